"""The typer application object and the shared error handling of every command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from testy_model.errors import TestyModelError

app = typer.Typer(
    name="testy-model",
    help="Analytical cost model of sparse DNNs on structured-sparse (N:M) accelerators with TASD.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
show_app = typer.Typer(
    help="Show derived properties of an architecture, network, ...", no_args_is_help=True
)
app.add_typer(show_app, name="show")
#: Width used when output goes to a file or a pipe: rich would otherwise cut tables (numbers
#: included) at 80 columns.
PIPE_WIDTH = 200
console = Console()
if not console.is_terminal:
    console = Console(width=PIPE_WIDTH)
err_console = Console(stderr=True)
if not err_console.is_terminal:
    err_console = Console(stderr=True, width=PIPE_WIDTH)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def user_errors(func: F) -> F:
    """Decorator: turn the project's errors (and ValueError/OSError from user input) into a
    one-line message and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except (TestyModelError, ValueError, OSError, KeyError) as err:
            msg = str(err) if not isinstance(err, KeyError) else str(err.args[0])
            fail(msg.splitlines()[0] if msg else type(err).__name__)

    return wrapper  # type: ignore[return-value]


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` zoo parameters, values read as YAML scalars (``seq_len=128``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TestyModelError(f"--param {item!r}: expected KEY=VALUE, e.g. seq_len=128")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise TestyModelError(f"--param {item!r}: cannot read the value {value!r}") from None
    return out


def main() -> None:
    """Console-script entry point."""
    app(prog_name="testy-model")
    sys.exit(0)
