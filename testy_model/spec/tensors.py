"""Reading real tensors from ``.npy``, ``.npz`` and safetensors files with numpy only.

No deep-learning framework is needed: the safetensors format is parsed here directly. A
safetensors file is

* 8 bytes: ``H``, the header length in bytes, an unsigned 64-bit little-endian integer;
* ``H`` bytes: a UTF-8 JSON object mapping each tensor name to
  ``{"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}`` (an optional
  ``"__metadata__"`` entry maps strings to strings);
* the data buffer: tensor bytes, little-endian, row-major, at ``[begin, end)`` relative to the
  start of the buffer (byte ``8 + H`` of the file).

A tensor's byte size must be ``prod(shape) · itemsize``. ``BF16`` (bfloat16, which numpy lacks)
is widened to float32 exactly: a bfloat16 is the upper 16 bits of a float32, so
``f32_bits = bf16_bits << 16``.

A layer points at a tensor with a reference string ``PATH`` or ``PATH:KEY`` (see
:func:`parse_tensor_ref`). Every problem (missing file, missing key, corrupt header) is a
:class:`~testy_model.errors.SpecError` naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
from pathlib import Path

import numpy as np

from testy_model.errors import SpecError

#: safetensors dtype code -> little-endian numpy dtype string. ``BF16`` is read as ``<u2`` and
#: widened to float32 by :func:`_bf16_to_f32`.
SAFETENSORS_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
}

#: Largest header we accept (bytes); the reference implementation caps it at 100 MB.
MAX_HEADER_BYTES = 100_000_000

_SUFFIXES = (".npy", ".npz", ".safetensors")
_REF_RE = re.compile(r"^(?P<path>.*?\.(?:npy|npz|safetensors))(?::(?P<key>.+))?$", re.IGNORECASE)


def parse_tensor_ref(ref: str) -> tuple[str, str | None]:
    """Split a tensor reference ``"PATH"`` or ``"PATH:KEY"`` into ``(path, key)``.

    The path must end in ``.npy``, ``.npz`` or ``.safetensors``; everything after the first
    ``:`` that follows that suffix is the key (``"w.npz:layer1.weight"`` ->
    ``("w.npz", "layer1.weight")``).
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


def _read_safetensors_header(path: Path) -> tuple[dict[str, dict[str, object]], int]:
    """Parse and validate the header; return ``(entries, data_start_byte)``.

    Checks: the 8-byte length fits the file and :data:`MAX_HEADER_BYTES`; the header is a JSON
    object; each entry has a known dtype, a list of non-negative integer dims, and
    ``data_offsets [begin, end]`` with ``end - begin == prod(shape)·itemsize`` inside the buffer.
    """
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise SpecError(
                f"corrupt safetensors file: {size} bytes, shorter than the 8-byte header length",
                file=str(path),
            )
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise SpecError(
                f"corrupt safetensors header: declared header length {length} bytes does not fit "
                f"a {size}-byte file",
                file=str(path),
            )
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SpecError(
            f"corrupt safetensors header: not UTF-8 JSON ({err})", file=str(path)
        ) from None
    if not isinstance(header, dict):
        raise SpecError(
            "corrupt safetensors header: expected a JSON object of tensors", file=str(path)
        )
    data_start = 8 + length
    buffer_len = size - data_start
    entries: dict[str, dict[str, object]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"header[{name!r}]"
        if not isinstance(entry, dict):
            raise SpecError(
                "corrupt safetensors header: expected an object with dtype/shape/data_offsets",
                file=str(path),
                key_path=where,
            )
        dtype = entry.get("dtype")
        if dtype not in SAFETENSORS_DTYPES:
            raise SpecError(
                f"unsupported or missing dtype {dtype!r} "
                f"(expected one of {', '.join(SAFETENSORS_DTYPES)})",
                file=str(path),
                key_path=f"{where}.dtype",
            )
        shape = entry.get("shape")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
        ):
            raise SpecError(
                f"bad shape {shape!r} (expected a list of non-negative integers)",
                file=str(path),
                key_path=f"{where}.shape",
            )
        offsets = entry.get("data_offsets")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise SpecError(
                f"bad data_offsets {offsets!r} (expected [begin, end] integers)",
                file=str(path),
                key_path=f"{where}.data_offsets",
            )
        begin, end = offsets
        itemsize = np.dtype(SAFETENSORS_DTYPES[dtype]).itemsize
        expected = math.prod(shape) * itemsize
        if not 0 <= begin <= end <= buffer_len or end - begin != expected:
            raise SpecError(
                f"corrupt safetensors header: data_offsets [{begin}, {end}] do not hold "
                f"{expected} bytes of {dtype}{shape} inside the {buffer_len}-byte data buffer",
                file=str(path),
                key_path=f"{where}.data_offsets",
            )
        entries[name] = {"dtype": dtype, "shape": tuple(shape), "begin": begin, "end": end}
    return entries, data_start


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
    entries, data_start = _read_safetensors_header(path)
    name = _pick_key(path, key, list(entries))
    entry = entries[name]
    begin, end = int(entry["begin"]), int(entry["end"])  # type: ignore[call-overload]
    with path.open("rb") as fh:
        fh.seek(data_start + begin)
        raw = fh.read(end - begin)
    dtype = str(entry["dtype"])
    arr = np.frombuffer(raw, dtype=SAFETENSORS_DTYPES[dtype]).reshape(entry["shape"])  # type: ignore[arg-type]
    if dtype == "BF16":
        return _bf16_to_f32(arr)
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
        entries, _ = _read_safetensors_header(p)
        return {n: (str(e["dtype"]), tuple(e["shape"])) for n, e in entries.items()}  # type: ignore[arg-type]
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
