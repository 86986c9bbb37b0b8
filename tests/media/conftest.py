from tests.images.conftest import _image_settings, conversation, libai, run_worker  # noqa: F401  (fixtures)
