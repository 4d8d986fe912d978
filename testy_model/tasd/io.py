"""Reading one real numeric array from a ``.npy`` or ``.npz`` file (for the CLI).

Every problem (missing file, wrong suffix, unreadable or pickled content, missing key, non-numeric
or complex dtype) is a :class:`~testy_model.errors.SpecError` naming the file (and the key).
Pickled object arrays are never loaded (``allow_pickle=False``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from testy_model.errors import SpecError

__all__ = ["load_array", "save_decomposition"]


def _check_numeric(arr: np.ndarray, file: str, key: str | None) -> np.ndarray:
    real = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if not (real or arr.dtype == np.bool_):
        raise SpecError(
            f"array has dtype {arr.dtype}, expected a real numeric array (int, float or bool)",
            file=file,
            key_path=key,
        )
    if arr.ndim == 0:
        raise SpecError(
            "array is 0-dimensional, expected at least one axis", file=file, key_path=key
        )
    return arr


def load_array(path: str | Path, key: str | None = None) -> np.ndarray:
    """Load an array from ``path``: a ``.npy`` file, or the array ``key`` of a ``.npz`` archive
    (``key`` may be left out when the archive holds exactly one array).

    Raises:
        SpecError: naming the file (and key) and what was expected.
    """
    p = Path(path)
    file = str(p)
    if not p.is_file():
        raise SpecError("file not found (expected an existing .npy or .npz file)", file=file)
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            if key is not None:
                raise SpecError("--key applies to .npz archives only", file=file)
            return _check_numeric(np.load(p, allow_pickle=False), file, None)
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as archive:
                names = list(archive.files)
                if key is None:
                    if len(names) != 1:
                        raise SpecError(
                            f"archive holds {len(names)} arrays ({', '.join(names) or 'none'}); "
                            "choose one with --key",
                            file=file,
                        )
                    key = names[0]
                if key not in names:
                    raise SpecError(
                        f"no array named {key!r} (expected one of: {', '.join(names) or 'none'})",
                        file=file,
                    )
                return _check_numeric(archive[key], file, key)
    except SpecError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SpecError(f"cannot read the array ({first})", file=file, key_path=key) from err
    raise SpecError(f"unsupported file type {suffix!r} (expected .npy or .npz)", file=file)


def save_decomposition(path: str | Path, terms: list[np.ndarray], residual: np.ndarray) -> None:
    """Write ``term1 .. termk`` and ``residual`` into the ``.npz`` archive ``path``."""
    arrays = {f"term{i}": t for i, t in enumerate(terms, start=1)}
    arrays["residual"] = residual
    with open(path, "wb") as fh:
        # numpy's stub also routes **kwds to savez's allow_pickle: bool; the keys here are
        # term1..termk and residual only
        np.savez(fh, **arrays)  # type: ignore[arg-type]
