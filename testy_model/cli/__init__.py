"""The ``testy-model`` command line (typer).

Each sub-command lives in its own module and registers itself on :data:`app` when imported
(:data:`~testy_model.cli.app.COMMAND_MODULES`): a run imports only the module of its command,
and each module imports its libraries inside the command, so ``--help`` and a one-file ``eval``
stay quick. Errors the user can fix (bad files, bad series) print one line and exit with code 2,
never a traceback.
"""

from __future__ import annotations

from testy_model.cli.app import app, main

__all__ = ["app", "main"]
