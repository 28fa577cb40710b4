"""Minimal safetensors reader/writer (struct + json), so no `safetensors` package is needed.

Format: u64 little-endian header length, JSON header {name: {dtype, shape, data_offsets}},
then raw little-endian data. Matches src-shared/tensor/safetensors.ts (header padded to 8).
"""
import json
import struct
from typing import Dict

import numpy as np

DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "F16": np.float16}
NAMES = {np.dtype(v): k for k, v in DTYPES.items()}


def save(path: str, tensors: Dict[str, np.ndarray], metadata: Dict[str, str] = None) -> None:
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[name] = {"dtype": NAMES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path: str) -> Dict[str, np.ndarray]:
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        s, t = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + s : 8 + n + t], DTYPES[e["dtype"]]).reshape(e["shape"]).copy()
    return out
