"""Minimal PNG decoder (stdlib zlib + numpy) for the shipped probe sets' images.

Handles what tools/world/png.ts writes: 8-bit, non-interlaced, colour type 2 (RGB) or 0 (grey),
any of the five scanline filters. Enough to read resources/datasets/*/images/*.png without PIL.
"""
import struct
import zlib

import numpy as np


def read_png(path: str) -> np.ndarray:
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (0, 2) and interlace == 0, f"{path}: unsupported PNG variant"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    ch = 3 if ctype == 2 else 1
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        prev = out[y - 1] if y else np.zeros(w * ch, np.int32)
        if f == 0:
            out[y] = line
        elif f == 2:
            out[y] = (line + prev) & 255
        else:  # 1 Sub, 3 Average, 4 Paeth depend on the reconstructed left neighbour: go pixel by pixel
            row = np.zeros(w * ch, np.int32)
            for i in range(w * ch):
                a = row[i - ch] if i >= ch else 0
                b, c = prev[i], (prev[i - ch] if i >= ch else 0)
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (line[i] + p) & 255
            out[y] = row
    img = out.astype(np.uint8).reshape(h, w, ch)
    return img if ch == 3 else img[..., 0]
