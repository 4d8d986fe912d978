"""The typer application object and the shared error handling of every command."""

from __future__ import annotations

import functools
import importlib
import sys
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import typer
from rich.console import Console
from rich.markup import escape

from testy_model.errors import TestyModelError

if TYPE_CHECKING:
    from typer.models import CommandInfo


def _flag_type_hidden() -> None:
    """Typer's rich help shows a type tag (``<bool>``) beside every option, flags too; a flag
    takes no value, so this CLI shows none for flags (value options keep their metavar)."""
    from typer.core import TyperOption

    original = TyperOption.display_type_rich
    if getattr(original, "_testy_flags", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag:
            return None
        return original(self, ctx)

    # typer has no hook for this: a marker attribute on the replacement, patched onto the class
    display_type_rich._testy_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flag_type_hidden()

#: The module of each sub-command (importing it registers the command). A run imports only the
#: module of the command it names; ``--help``, an unknown command and users of :data:`app`
#: (tests) get them all, in this order (the order of ``--help``).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "decompose": ("decompose_cmd",),
    "eval": ("eval_cmd",),
    "map": ("map_cmd",),
    "minilm": ("minilm_cmd",),
    "show": ("network_cmd", "spec_cmd"),
    "search": ("search_cmd",),
    "study": ("sparseloop_cmd",),
    "validate": ("spec_cmd",),
    "sweep": ("sweep_cmd",),
    "pareto": ("sweep_cmd",),
}


def load_commands(names: Iterable[str] | None = None) -> None:
    """Import the modules of the commands ``names`` (all commands when ``None``)."""
    wanted = COMMAND_MODULES if names is None else names
    for name in wanted:
        for module in COMMAND_MODULES[name]:
            importlib.import_module(f"testy_model.cli.{module}")


class _LazyTyper(typer.Typer):
    """A ``Typer`` whose command modules are imported when typer first reads its commands
    (building the click group for a run or a test), unless :func:`main` already imported the one
    module a run needs. Keeps ``import testy_model.cli`` free of the commands' libraries."""

    _loaded = False

    @property  # typer declares a plain attribute; same type
    def registered_commands(self) -> list[CommandInfo]:
        if not self._loaded:
            self._loaded = True
            load_commands()
        return self._commands

    @registered_commands.setter
    def registered_commands(self, value: list[CommandInfo]) -> None:
        self._commands = value


app = _LazyTyper(
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


def one_line(text: str, limit: int = 2000) -> str:
    """``text`` on one line (whitespace runs joined), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    err_console.print(
        f"[bold red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


class _OneLineWarnings:
    """``warnings.showwarning`` for a command run: each warning on one line of stderr
    (``warning: file:line: key.path: message``, no Python source line), each text once."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        text = one_line(str(message))
        if text in self.seen:
            return
        self.seen.add(text)
        err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def user_errors(func: F) -> F:
    """Decorator of every command: the project's errors (and ValueError/OSError from user
    input) become a one-line message and exit code 2; warnings print one line each while the
    command runs (installed for the command only, never process-wide)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("always", UserWarning)
            warnings.showwarning = _OneLineWarnings()
            try:
                return func(*args, **kwargs)
            except typer.Exit:
                raise
            except (TestyModelError, ValueError, OSError, KeyError) as err:
                msg = str(err) if not isinstance(err, KeyError) else str(err.args[0])
                fail(msg if msg else type(err).__name__)
            except RecursionError:
                fail("input nested too deeply to process (expected a plain file)")
            except MemoryError:
                fail("out of memory: the input is too large to process")

    return cast(F, wrapper)  # functools.wraps gives it func's name, signature and docstring


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` zoo parameters, values read as YAML scalars (``seq_len=128``)."""
    from testy_model.spec.yaml_io import parse_yaml_text

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TestyModelError(f"--param {item!r}: expected KEY=VALUE, e.g. seq_len=128")
        try:
            out[key.strip().replace("-", "_")] = parse_yaml_text(value, f"--param {item}")[0]
        except TestyModelError as err:
            raise TestyModelError(
                f"--param {item!r}: cannot read the value ({getattr(err, 'problem', err)})"
            ) from None
    return out


def _command_named(argv: list[str]) -> str | None:
    """The sub-command ``argv`` names (its first word not starting with ``-``), if known."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMAND_MODULES else None
    return None


def main() -> None:
    """Console-script entry point: imports only the module of the command run (all for help)."""
    name = _command_named(sys.argv[1:])
    if name is not None and not app._loaded:
        app._loaded = True
        load_commands([name])
    app(prog_name="testy-model")
    sys.exit(0)
