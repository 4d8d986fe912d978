"""The ``testy-model`` command line (typer).

Each sub-command lives in its own module and registers itself on :data:`app`. Errors the user can
fix (bad files, bad series) print one line and exit with code 2, never a traceback.
"""

from __future__ import annotations

from testy_model.cli import (  # noqa: F401  (import registers the commands)
    decompose_cmd,
    eval_cmd,
    map_cmd,
    minilm_cmd,
    network_cmd,
    search_cmd,
    sparseloop_cmd,
    spec_cmd,
    sweep_cmd,
)
from testy_model.cli.app import app, main

__all__ = ["app", "main"]
