"""Output files of the commands: checked before the run, named after it.

Rules (every command that writes a file follows them, before any work is done):

- the folder of an output must exist (a typo in ``--json out/r.json`` fails at once, not after the
  whole run);
- an output is never one of the run's input files (``search --out`` onto its own ``--network``);
- an output that is a symbolic link pointing outside the output's folder is refused;
- an existing file is replaced only with ``--force`` (or where the command's documented behaviour
  is to replace it: ``sweep --out``, the result table of a resumable sweep);
- two outputs of one run never share a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from testy_model.errors import SpecError


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def check_output(
    option: str,
    path: str | Path,
    inputs: Iterable[str | Path | None] = (),
    force: bool = False,
    replace_ok: bool = False,
) -> Path:
    """Check one output path (module docstring); return it as a :class:`Path`.

    Raises:
        SpecError: naming the option and the path, with what to do instead.
    """
    p = Path(path)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise SpecError(
            f"{option} {p}: the folder {str(folder)!r} does not exist (create it first)"
        )
    if p.is_dir():
        raise SpecError(f"{option} {p}: is a folder; expected a file name")
    for src in inputs:
        if src is None or str(src) == "":
            continue
        s = Path(src)
        if s.is_file() and _same(p, s):
            raise SpecError(
                f"{option} {p}: is an input file of this run ({s}); choose another output name"
            )
    if p.is_symlink():
        target = p.resolve()
        if target.parent != folder.resolve():
            raise SpecError(
                f"{option} {p}: is a symbolic link to {target}, outside the folder "
                f"{str(folder)!r}; refusing to follow it"
            )
    if p.exists() and not (force or replace_ok):
        raise SpecError(f"{option} {p}: the file exists; pass --force to replace it")
    return p


def check_outputs(
    outputs: Mapping[str, str | Path | None],
    inputs: Iterable[str | Path | None] = (),
    force: bool = False,
) -> dict[str, Path]:
    """:func:`check_output` for every output given (``None`` = not requested); also refuses two
    outputs with one path. Returns option -> path for the requested ones."""
    ins = list(inputs)
    out: dict[str, Path] = {}
    for opt, path in outputs.items():
        if path is None:
            continue
        p = check_output(opt, path, ins, force)
        for other, q in out.items():
            if _same(p, q) or p.resolve() == q.resolve():
                raise SpecError(f"{opt} {p}: the same file as {other} {q}")
        out[opt] = p
    return out


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename (a
    symbolic link at ``path`` is replaced, never followed; a crash leaves no half file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def save_figure(fig: Any, path: Path, dpi: int = 150) -> None:
    """Save a matplotlib ``Figure`` (PNG/SVG/PDF by suffix) with nothing clipped."""
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
