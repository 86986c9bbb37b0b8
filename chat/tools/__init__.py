"""User-triggered tools (docs/tools.md): a registry, and the code that runs a call."""
