#!/usr/bin/python3
"""Reference resizes from Pillow itself, for tests/unit/pil-resample.test.ts.

Pillow is what the Hugging Face image processors resize with (`PIL.Image.resize(..., reducing_gap=None)`),
so Loupe's src-shared/image/pil-resample.ts must reproduce it exactly. Writes
tests/fixtures/pil-resize/cases.json (sizes, filters, Pillow version) and cases.bin (uint8 inputs and
outputs, concatenated in the order listed). Deterministic: fixed seed.

Run: /usr/bin/python3 tools/hf-fixtures/build_pil_resize.py   (Debian python3-pil, numpy)
"""
import json
import os

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "pil-resize")
FILTERS = {"nearest": Image.NEAREST, "box": Image.BOX, "bilinear": Image.BILINEAR, "hamming": Image.HAMMING,
           "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}
# (width, height, mode) in → list of (width, height) out: down, up, mixed, odd ratios.
CASES = [
    (64, 64, "RGB", [(32, 32), (21, 21), (40, 23)]),
    (48, 32, "RGB", [(32, 21), (48, 32), (60, 40)]),
    (37, 100, "RGB", [(11, 30), (32, 86), (40, 40)]),
    (9, 5, "L", [(27, 16), (4, 3), (1, 1)]),
]


def main():
    rng = np.random.default_rng(20261205)
    os.makedirs(OUT, exist_ok=True)
    blob = bytearray()
    index = []
    for w, h, mode, outs in CASES:
        ch = 3 if mode == "RGB" else 1
        # Smooth structure + noise, so both the filter shape and the rounding are exercised.
        yy, xx = np.mgrid[0:h, 0:w]
        base = 127 + 100 * np.sin(xx[..., None] * 0.7 + yy[..., None] * 0.3 + np.arange(ch) * 1.3)
        arr = np.clip(base + rng.normal(0, 40, (h, w, ch)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr[..., 0] if ch == 1 else arr, mode)
        entry = {"width": w, "height": h, "channels": ch, "offset": len(blob), "resized": []}
        blob += arr.tobytes()
        for ow, oh in outs:
            for name, f in FILTERS.items():
                out = np.asarray(img.resize((ow, oh), resample=f, reducing_gap=None), dtype=np.uint8)
                entry["resized"].append({"width": ow, "height": oh, "filter": name, "offset": len(blob)})
                blob += out.tobytes()
        index.append(entry)
    with open(os.path.join(OUT, "cases.bin"), "wb") as fh:
        fh.write(bytes(blob))
    with open(os.path.join(OUT, "cases.json"), "w") as fh:
        json.dump({"generator": "tools/hf-fixtures/build_pil_resize.py", "pillow": PIL.__version__, "images": index}, fh, indent=1)
    print(f"Pillow {PIL.__version__}: {sum(len(e['resized']) for e in index)} resizes, {len(blob)} bytes")


if __name__ == "__main__":
    main()
