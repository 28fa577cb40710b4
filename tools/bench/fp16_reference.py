"""Reference fp32 -> fp16 / bf16 roundings from PyTorch, for tests/unit/fp16-conversion.test.ts.

Writes tests/fixtures/fp16/:
  reference.json   sha256 of the fp16 and bf16 bits of ALL 2^32 float32 bit patterns, in
                   bit-pattern order (little-endian uint16), so a full sweep can be checked
                   against PyTorch without storing 16 GiB; plus a few sample rows.
  sample.bin       20,000 rows of (f32 bits u32, f16 bits u16, bf16 bits u16), little-endian:
                   edge cases (zeros, subnormal boundaries, ties at every rounding position,
                   65504/65520, Inf, NaN payloads) and seeded random patterns.

fp16 is torch's `Tensor.to(torch.float16)` (round to nearest, ties to even; NaN -> sign|0x7e00).
bf16 is torch's `Tensor.to(torch.bfloat16)` for every non-NaN; torch 1.13 writes 0xffff for
every NaN, which drops the sign, so NaNs use the rule x86's VCVTNEPS2BF16 applies instead:
the top 16 bits with the quiet bit set, (x >> 16) | 0x0040. Run with Debian's python3 (torch 1.13):
    /usr/bin/python3 tools/bench/fp16_reference.py [--no-full]
"""
import hashlib
import json
import os
import sys

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "fp16")


def convert(bits: np.ndarray):
    f = torch.from_numpy(bits.view(np.float32))
    h = f.to(torch.float16).numpy().view(np.uint16)
    b = f.to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16).copy()
    nan = (bits & 0x7FFFFFFF) > 0x7F800000
    b[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return h, b


def edge_cases() -> np.ndarray:
    xs = set()
    for sign in (0, 0x80000000):
        for e in range(0, 256):
            for m in (0, 1, 2, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x3000, 0x7FFF, 0x8000, 0x8001, 0x18000,
                      0x400000, 0x7FFFFF, 0x7FF000, 0x7FE000, 0x7FEFFF, 0x7FF001):
                xs.add(sign | (e << 23) | m)
            # ties at every shift a subnormal half can need (14..24 bits dropped), and one ulp either side
            for shift in range(13, 25):
                t = 1 << (shift - 1)
                for m in (t, t - 1, t + 1, t | (1 << shift), (t | (1 << shift)) - 1, (t | (1 << shift)) + 1):
                    xs.add(sign | (e << 23) | (m & 0x7FFFFF))
    return np.array(sorted(xs), dtype=np.uint32)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240611)
    edges = edge_cases()
    n = 20000
    rand = rng.integers(0, 2**32, size=max(0, n - len(edges)), dtype=np.uint64).astype(np.uint32)
    sample = np.concatenate([edges, rand])[:n]
    h, b = convert(sample)
    rows = np.zeros(n, dtype=[("x", "<u4"), ("h", "<u2"), ("b", "<u2")])
    rows["x"], rows["h"], rows["b"] = sample, h, b
    rows.tofile(os.path.join(OUT, "sample.bin"))
    ref = {"source": f"torch {torch.__version__} Tensor.to(float16/bfloat16); bf16 NaN -> (x>>16)|0x40", "sampleRows": n, "edgeRows": int(len(edges))}
    if "--no-full" not in sys.argv:
        hh, hb = hashlib.sha256(), hashlib.sha256()
        chunk = 1 << 26
        for start in range(0, 1 << 32, chunk):
            bits = np.arange(start, start + chunk, dtype=np.uint64).astype(np.uint32)
            h, b = convert(bits)
            hh.update(h.astype("<u2").tobytes())
            hb.update(b.astype("<u2").tobytes())
        ref["all32"] = {"float16Sha256": hh.hexdigest(), "bfloat16Sha256": hb.hexdigest(), "order": "bit patterns 0..2^32-1, uint16 little-endian"}
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
