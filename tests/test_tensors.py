"""Reading .npy / .npz / safetensors files (testy_model.spec.tensors).

The safetensors files are written here from the format's specification (8-byte little-endian
header length, JSON header with dtype/shape/data_offsets, raw little-endian row-major bytes),
not with the safetensors package, so the reader (the package) is checked against the spec.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from testy_model.errors import SpecError
from testy_model.spec.tensors import (
    list_tensors,
    load_tensor,
    load_tensor_ref,
    parse_tensor_ref,
)

# numpy dtype -> safetensors code, per the format's documented dtype names.
_CODES = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def write_safetensors(
    path: Path,
    tensors: dict[str, tuple[str, tuple[int, ...], bytes]],
    *,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write a safetensors file from (dtype code, shape, raw little-endian bytes) per tensor:
    tensors packed back to back in insertion order, offsets relative to the data buffer."""
    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, (code, shape, raw) in tensors.items():
        header[name] = {
            "dtype": code,
            "shape": list(shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def _entry(arr: np.ndarray) -> tuple[str, tuple[int, ...], bytes]:
    code = _CODES[arr.dtype.name]
    return code, arr.shape, arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")


def test_safetensors_round_trip_several_dtypes(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    arrays = {
        "f64": rng.standard_normal((3, 5)),
        "f32": rng.standard_normal((4, 2, 3)).astype(np.float32),
        "f16": rng.standard_normal((8,)).astype(np.float16),
        "i64": rng.integers(-(2**40), 2**40, size=(2, 2)),
        "i32": rng.integers(-1000, 1000, size=(6,)).astype(np.int32),
        "i16": rng.integers(-300, 300, size=(2, 3)).astype(np.int16),
        "i8": rng.integers(-128, 128, size=(5, 4)).astype(np.int8),
        "u8": rng.integers(0, 256, size=(7,)).astype(np.uint8),
        "mask": rng.random((3, 3)) < 0.5,
        "scalar": np.array(2.5, dtype=np.float32),  # shape [] -> 4 bytes
        "empty": np.zeros((0, 4), dtype=np.float32),  # 0 bytes
    }
    path = tmp_path / "m.safetensors"
    write_safetensors(path, {k: _entry(v) for k, v in arrays.items()}, metadata={"format": "pt"})
    listing = list_tensors(path)
    assert set(listing) == set(arrays)  # __metadata__ is not a tensor
    for name, arr in arrays.items():
        assert listing[name] == (_CODES[arr.dtype.name], arr.shape)
        got = load_tensor(path, name)
        assert got.dtype == arr.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
    got = load_tensor(path, "f32")
    got[0, 0, 0] = 99.0  # a writable copy, not a view of the file buffer
    np.testing.assert_array_equal(load_tensor(path, "f32"), arrays["f32"])


def test_bf16_widened_to_float32(tmp_path: Path) -> None:
    # bfloat16 bit patterns (sign | 8-bit exponent | 7-bit mantissa), hand-decoded:
    # 0x3F80 -> 1.0; 0xC000 -> -2.0; 0x3FC0 -> 1.5 (mantissa 0b1000000 = 0.5);
    # 0x4049 -> 0x40490000 = 3.140625; 0x0000 -> 0.0; 0x7F80 -> +inf
    bits = np.array([[0x3F80, 0xC000, 0x3FC0], [0x4049, 0x0000, 0x7F80]], dtype="<u2")
    path = tmp_path / "bf.safetensors"
    write_safetensors(path, {"w": ("BF16", (2, 3), bits.tobytes())})
    got = load_tensor(path)  # the only tensor: key may be omitted
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[1.0, -2.0, 1.5], [3.140625, 0.0, np.inf]])
    assert list_tensors(path) == {"w": ("BF16", (2, 3))}


def test_data_offsets_out_of_order_are_honoured(tmp_path: Path) -> None:
    # two tensors whose data sit in the buffer in the reverse order of the header entries
    a = np.arange(4, dtype="<f4")
    b = np.arange(10, 13, dtype="<i4")
    header = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [12, 28]},
        "b": {"dtype": "I32", "shape": [3], "data_offsets": [0, 12]},
    }
    text = json.dumps(header).encode()
    path = tmp_path / "o.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + b.tobytes() + a.tobytes())
    np.testing.assert_array_equal(load_tensor(path, "a"), a)
    np.testing.assert_array_equal(load_tensor(path, "b"), b)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\x01\x02", "header too small"),
        (struct.pack("<Q", 10_000) + b"{}", "invalid header length"),
        (struct.pack("<Q", 5) + b"{oops", "invalid JSON"),
        (struct.pack("<Q", 2) + b"[]", "invalid JSON"),
    ],
)
def test_corrupt_safetensors_header(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=match) as info:
        load_tensor(path, "x")
    assert info.value.file == str(path)
    assert str(path) in str(info.value)


def test_corrupt_safetensors_entries(tmp_path: Path) -> None:
    path = tmp_path / "e.safetensors"
    # 3 F32 values need 12 bytes; the offsets claim 8
    write_safetensors(path, {"w": ("F32", (3,), b"\0" * 8)})
    with pytest.raises(SpecError, match=r"corrupt safetensors file.*offset") as info:
        load_tensor(path, "w")
    assert info.value.file == str(path)
    write_safetensors(path, {"w": ("Q4", (2,), b"\0\0")})
    with pytest.raises(SpecError, match=r"corrupt safetensors file.*Q4"):
        list_tensors(path)
    write_safetensors(path, {"w": ("F32", (-1,), b"")})
    with pytest.raises(SpecError, match=r"corrupt safetensors file.*-1"):
        load_tensor(path)


def test_missing_file_key_and_suffix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.npy"
    with pytest.raises(SpecError, match="not found") as info:
        load_tensor(missing)
    assert info.value.file == str(missing)
    path = tmp_path / "t.safetensors"
    write_safetensors(path, {"a": _entry(np.ones(2, np.float32)), "b": _entry(np.ones(1))})
    with pytest.raises(SpecError, match=r"no tensor 'c' in the file \(available: a, b\)"):
        load_tensor(path, "c")
    with pytest.raises(SpecError, match="holds 2 tensors; name one"):
        load_tensor(path)
    other = tmp_path / "w.pt"
    other.write_bytes(b"x")
    with pytest.raises(SpecError, match=r"unsupported tensor file type '\.pt'"):
        load_tensor(other)


def test_npy_and_npz(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal(16)
    np.save(tmp_path / "w.npy", w)
    np.savez(tmp_path / "m.npz", weight=w, bias=b)
    np.testing.assert_array_equal(load_tensor(tmp_path / "w.npy"), w)
    np.testing.assert_array_equal(load_tensor(tmp_path / "m.npz", "weight"), w)
    np.testing.assert_array_equal(load_tensor(tmp_path / "m.npz", "bias"), b)
    assert list_tensors(tmp_path / "m.npz") == {
        "weight": ("float32", (16, 8)),
        "bias": ("float64", (16,)),
    }
    assert list_tensors(tmp_path / "w.npy") == {"": ("float32", (16, 8))}
    with pytest.raises(SpecError, match=r"no tensor 'bias2'.*available: weight, bias"):
        load_tensor(tmp_path / "m.npz", "bias2")
    with pytest.raises(SpecError, match="holds 2 tensors"):
        load_tensor(tmp_path / "m.npz")
    with pytest.raises(SpecError, match="drop the key"):
        load_tensor(tmp_path / "w.npy", "weight")
    (tmp_path / "bad.npy").write_bytes(b"not an npy file")
    with pytest.raises(SpecError, match=r"corrupt \.npy") as info:
        load_tensor(tmp_path / "bad.npy")
    assert info.value.file == str(tmp_path / "bad.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK not a zip")
    with pytest.raises(SpecError, match=r"corrupt \.npz"):
        load_tensor(tmp_path / "bad.npz", "x")


def test_tensor_refs(tmp_path: Path) -> None:
    assert parse_tensor_ref("w.npy") == ("w.npy", None)
    assert parse_tensor_ref("dir/m.npz:layer1.weight") == ("dir/m.npz", "layer1.weight")
    assert parse_tensor_ref("m.safetensors:a:b") == ("m.safetensors", "a:b")
    with pytest.raises(SpecError, match="PATH:KEY"):
        parse_tensor_ref("weights.bin")
    w = np.arange(6.0).reshape(2, 3)
    np.savez(tmp_path / "m.npz", w=w)
    np.testing.assert_array_equal(load_tensor_ref("m.npz:w", base_dir=tmp_path), w)


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "networks" / "tiny_cnn.yaml"


def test_example_network_tensors_match_layer_shapes() -> None:
    """The shipped example network's weight arrays exist, have the layer's weight layout
    ((M, K) for a GEMM, (M, C, R, S) for a conv) and the non-zero counts stated in its
    comments (50% of 432 = 216; 20% of 16384 = 3276.8 -> 3277 kept after rounding the pruned
    count 13107.2 to 13107; 20% of 640 = 128)."""
    from testy_model.spec import load_network

    kept = {}
    for layer in load_network(EXAMPLE).layers:
        b = layer.problem.bounds
        expected = (b["M"], b["K"]) if "K" in b else (b["M"], b["C"], b["R"], b["S"])
        arr = load_tensor_ref(layer.weight_tensor, base_dir=EXAMPLE.parents[2])
        assert arr.shape == expected, layer.name
        kept[layer.name] = int(np.count_nonzero(arr))
    assert kept == {"conv1": 216, "fc1": 3277, "fc2": 128}
