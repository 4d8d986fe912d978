"""Reading real tensors from ``.npy``, ``.npz`` and safetensors files.

``.npy``/``.npz`` are read by numpy (``allow_pickle=False``); safetensors files by the
``safetensors`` package (its numpy front end), which validates the header (lengths, JSON, dtypes,
shapes, offsets). ``BF16`` (bfloat16, which numpy lacks) is widened to float32 exactly: a
bfloat16 is the upper 16 bits of a float32, so ``f32_bits = bf16_bits << 16``.

A layer points at a tensor with a reference string ``PATH`` or ``PATH:KEY`` (see
:func:`parse_tensor_ref`). Every problem (missing file, missing key, corrupt header) is a
:class:`~testy_model.errors.SpecError` naming the file.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

from testy_model.errors import SpecError

_SUFFIXES = (".npy", ".npz", ".safetensors")
_REF_RE = re.compile(
    r"^(?P<path>.*?\.(?:npy|npz|safetensors|onnx))(?::(?P<key>.+))?$", re.IGNORECASE
)


def parse_tensor_ref(ref: str) -> tuple[str, str | None]:
    """Split a tensor reference ``"PATH"`` or ``"PATH:KEY"`` into ``(path, key)``.

    The path must end in ``.npy``, ``.npz``, ``.safetensors`` or ``.onnx``; everything after
    the first ``:`` that follows that suffix is the key (``"w.npz:layer1.weight"`` ->
    ``("w.npz", "layer1.weight")``). For an ONNX model the key is a GEMM layer's name and the
    array its weight (``spec.onnx_loader.onnx_weight``).
    """
    match = _REF_RE.match(ref.strip())
    if match is None:
        raise SpecError(
            f"tensor reference {ref!r} is not PATH or PATH:KEY with PATH ending in "
            f"{', '.join(_SUFFIXES)}"
        )
    return match.group("path"), match.group("key")


def load_tensor_ref(
    ref: str, base_dir: str | os.PathLike[str] | None = None, layer: str | None = None
) -> np.ndarray:
    """Load the array a reference ``"PATH[:KEY]"`` names; relative paths resolve against
    ``base_dir`` (e.g. the directory of the network file that holds the reference).

    The array must hold at least one value and only finite numbers (checked before any
    arithmetic); otherwise a :class:`SpecError` names the file, the key and ``layer``.
    """
    path, key = parse_tensor_ref(ref)
    full = Path(path)
    if base_dir is not None and not full.is_absolute():
        full = Path(base_dir) / full
    if full.suffix.lower() == ".onnx":
        from testy_model.spec.onnx_loader import onnx_weight

        if not key:
            raise SpecError("an ONNX tensor reference needs a layer name: MODEL.onnx:LAYER")
        arr = onnx_weight(full, key)
        check_tensor_values(arr, str(full), key, f"layer {layer!r}: " if layer else "")
        return arr
    where = f"layer {layer!r}: " if layer else ""
    try:
        arr = load_tensor(full, key)
    except SpecError as err:
        if not layer:
            raise
        raise SpecError(where + err.problem, file=err.file, key_path=err.key_path) from None
    check_tensor_values(arr, str(full), key, where)
    return arr


def check_tensor_values(arr: np.ndarray, file: str, key: str | None, where: str = "") -> None:
    """Raise :class:`SpecError` when ``arr`` is empty or holds NaN or an infinity (naming the
    first such value's index)."""
    if arr.size == 0:
        raise SpecError(
            f"{where}the tensor is empty (shape {list(arr.shape)}); expected at least one value",
            file=file,
            key_path=key,
        )
    if np.issubdtype(arr.dtype, np.inexact):
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            what = "NaN" if np.isnan(arr[idx]) else "an infinity"
            raise SpecError(
                f"{where}the tensor holds {int(bad.sum()):,} non-finite value(s), {what} first "
                f"at index {list(idx)}; expected finite numbers",
                file=file,
                key_path=key,
            )


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise SpecError(
            f"unsupported tensor file type {suffix or '(none)'!r} "
            f"(expected one of {', '.join(_SUFFIXES)})",
            file=str(path),
        )
    if not path.is_file():
        raise SpecError("tensor file not found", file=str(path))
    return suffix


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    """Widen bfloat16 bit patterns (uint16) to float32: ``f32_bits = bf16_bits << 16`` (exact)."""
    return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)


def _safetensors_error(path: Path, err: Exception) -> SpecError:
    return SpecError(f"corrupt safetensors file ({err})", file=str(path))


def _safetensors_entries(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype code, shape)}`` of a safetensors file, from its validated header."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            out = {}
            for name in fh.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                sl = fh.get_slice(name)
                out[name] = (str(sl.get_dtype()), tuple(int(d) for d in sl.get_shape()))
            return out
    except SafetensorError as err:
        raise _safetensors_error(path, err) from None


def _no_key(path: Path, key: str, available: list[str]) -> SpecError:
    shown = ", ".join(available[:20]) + (" ..." if len(available) > 20 else "")
    return SpecError(
        f"no tensor {key!r} in the file (available: {shown or 'none'})",
        file=str(path),
        key_path=key,
    )


def _pick_key(path: Path, key: str | None, available: list[str]) -> str:
    if key is None:
        if len(available) == 1:
            return available[0]
        raise SpecError(
            f"the file holds {len(available)} tensors; name one with PATH:KEY "
            f"(available: {', '.join(available[:20]) or 'none'})",
            file=str(path),
        )
    if key not in available:
        raise _no_key(path, key, available)
    return key


def _load_safetensors(path: Path, key: str | None) -> np.ndarray:
    from safetensors import SafetensorError, deserialize, safe_open

    entries = _safetensors_entries(path)
    name = _pick_key(path, key, list(entries))
    dtype, shape = entries[name]
    try:
        if dtype == "BF16":
            raw = next(e for n, e in deserialize(path.read_bytes()) if n == name)["data"]
            bits = np.frombuffer(bytes(raw), dtype="<u2").reshape(shape)
            return _bf16_to_f32(bits)
        with safe_open(str(path), framework="np") as fh:
            arr = fh.get_tensor(name)
    except SafetensorError as err:
        raise _safetensors_error(path, err) from None
    except TypeError as err:  # a dtype numpy cannot hold (FP8, FP4, ...)
        raise SpecError(
            f"tensor {name!r} has dtype {dtype}, which numpy cannot represent ({err})",
            file=str(path),
            key_path=name,
        ) from None
    return arr.astype(arr.dtype.newbyteorder("="), copy=True)


def _load_npy(path: Path, key: str | None) -> np.ndarray:
    if key is not None:
        raise SpecError(f"a .npy file holds one array; drop the key {key!r}", file=str(path))
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise SpecError(f"corrupt .npy file ({err})", file=str(path)) from None


def _load_npz(path: Path, key: str | None) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as archive:
            name = _pick_key(path, key, list(archive.files))
            return archive[name]
    except SpecError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise SpecError(f"corrupt .npz file ({err})", file=str(path)) from None


def load_tensor(path: str | os.PathLike[str], key: str | None = None) -> np.ndarray:
    """Load one array from a ``.npy``, ``.npz`` or ``.safetensors`` file.

    Args:
        path: the file.
        key: the array's name in an ``.npz``/safetensors file; may be omitted when the file
            holds exactly one array; must be omitted for ``.npy``.

    Returns:
        A new array in native byte order (``BF16`` widened to float32; other dtypes kept).

    Raises:
        SpecError: missing file, unsupported suffix, missing/ambiguous key, corrupt content.
    """
    p = Path(path)
    kind = _kind(p)
    if kind == ".npy":
        return _load_npy(p, key)
    if kind == ".npz":
        return _load_npz(p, key)
    return _load_safetensors(p, key)


def list_tensors(path: str | os.PathLike[str]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Names of the arrays in a file, each with ``(dtype, shape)``.

    The dtype is the safetensors code (``"BF16"``, ``"F32"``, ...) for safetensors files and
    numpy's name (``"float32"``) for ``.npy``/``.npz`` (a ``.npy`` file's one array is named
    ``""``). Only headers are read, never the data.
    """
    p = Path(path)
    kind = _kind(p)
    if kind == ".safetensors":
        return _safetensors_entries(p)
    try:
        if kind == ".npy":
            arr = np.load(p, mmap_mode="r", allow_pickle=False)
            return {"": (str(arr.dtype), tuple(arr.shape))}
        out: dict[str, tuple[str, tuple[int, ...]]] = {}
        with zipfile.ZipFile(p) as archive:
            for member in archive.namelist():
                with archive.open(member) as fh:
                    major, _ = np.lib.format.read_magic(fh)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if major == 1
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(fh)
                out[member.removesuffix(".npy")] = (str(dtype), tuple(shape))
        return out
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise SpecError(f"corrupt {kind} file ({err})", file=str(p)) from None
