"""Minimal, dependency-free safetensors writer and reader (numpy + torch only).

Format: 8-byte little-endian u64 header length N, then N bytes of UTF-8 JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}
padded with spaces to a multiple of 8, then the raw little-endian data buffer.
Offsets are relative to the start of the data buffer; tensors are packed in sorted-name
order and the JSON keys are sorted, so the same tensors always give the same bytes.
"""

import json
import struct

import numpy as np
import torch

_DTYPES = {
    torch.float32: ("F32", "<f4"),
    torch.float64: ("F64", "<f8"),
    torch.int32: ("I32", "<i4"),
    torch.int64: ("I64", "<i8"),
}
_FROM_CODE = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8"}


def serialize(tensors, metadata=None):
    """tensors: {name: torch.Tensor}; metadata: {str: str}. Returns bytes."""
    header = {}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        code, np_dtype = _DTYPES[t.dtype]
        raw = t.numpy().astype(np_dtype, copy=False).tobytes(order="C")
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("__metadata__ must map str to str")
        header["__metadata__"] = dict(metadata)
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(chunks)


def save_file(tensors, path, metadata=None):
    data = serialize(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def load_file(path):
    """Returns (tensors {name: torch.Tensor}, metadata {str: str})."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    buf = data[8 + n :]
    out = {}
    end_max = 0
    for name, info in header.items():
        b, e = info["data_offsets"]
        end_max = max(end_max, e)
        arr = np.frombuffer(buf[b:e], dtype=_FROM_CODE[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    if end_max != len(buf):
        raise ValueError(f"{path}: data buffer is {len(buf)} bytes, header covers {end_max}")
    return out, metadata
