"""Independent reference for the object-part LogitLens on the hf-llava fixture (tests/integration/hf-llava-logit-lens.test.ts).

Writes tests/fixtures/hf-llava/parts/: a two-item Loupe dataset (the fixture's wide.png 48x32 and noise.png 32x32, an
instance-id mask per image with part labels `object/<part>`) and expected.json with, per item, part and LLM layer, the
part's LogitLens rank computed here with Hugging Face's own modules:

  - the model: build_llava.build_model() (the fixture's config + its seeded re-draw of every weight; checked below to
    reproduce the committed reference logits, so these are the weights the ONNX was exported from);
  - inputs: HF's LlavaProcessor (CLIPImageProcessor + chat template), as build_llava's references;
  - hidden states: `output_hidden_states` (0 = embeddings, l = after layer l-1); HF's last entry is already after the
    final norm, so the last layer's pre-norm output is taken with a forward hook on the last decoder layer instead
    (and norm(hook) == hidden_states[-1] is asserted);
  - the lens: `model.language_model.model.norm` then `model.language_model.lm_head`;
  - the part's tokens: the mask put through HF's own resize + center_crop geometry (transformers.image_transforms
    on the id raster, NEAREST), then every 4x4 patch with at least one part pixel; image token k = patch k (row-major);
  - rank (tie rule, the same as src-shared/metrics/logit-lens.ts): 1 + #{v: z_v > z_t} + #{v < t: z_v == z_t}, i.e.
    the position of t in a stable descending sort with ties going to the lower token id; the part's rank at a layer is
    the minimum over its patches.

`min_gap` per part and layer is the smallest |z_v - z_t| (v != t) over the part's patches: ONNX Runtime and PyTorch
differ by ~1e-6 here, so ranks compare exactly while every gap is well above that.

Run: /usr/bin/python3 tools/hf-fixtures/logit_lens_llava.py   (~3 s; same environment as build_llava.py)
"""
import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import build_llava as B  # noqa: E402  (sets up sys.path for transformers v4.46.1 and the stubs)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import LlavaProcessor  # noqa: E402
from transformers.image_transforms import center_crop, resize  # noqa: E402
from transformers.image_utils import ChannelDimension, PILImageResampling  # noqa: E402
from transformers.models.clip.image_processing_clip import get_resize_output_image_size  # noqa: E402

OUT = os.path.join(B.OUT, "parts")
GENERATOR = "tools/hf-fixtures/logit_lens_llava.py"


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__" or meta["dtype"] != "F32":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(meta["shape"])
    return out


def disc(h, w, cx, cy, r):
    y, x = np.mgrid[0:h, 0:w]
    return (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r


def masks():
    """Per item: (image file, question, id raster, [(id, part name)])."""
    wide = np.zeros((32, 48), np.uint8)
    wide[4:14, 10:22] = 1  # inside the centre crop (x 8..40)
    wide[disc(32, 48, 30, 22, 6)] = 2
    wide[:, 0:6] = 3  # wholly cropped away: must be reported, not ranked
    wide[24:30, 4:12] = 4  # straddles the crop's left edge
    noise = np.zeros((32, 32), np.uint8)
    noise[0:8, 0:8] = 1
    noise[disc(32, 32, 20, 20, 5)] = 2
    noise[31, 31] = 5  # one pixel: one patch
    return [
        ("wide", "wide.png", "Describe the colour and shape of the object.", wide,
         [(1, "object/square"), (2, "object/circle"), (3, "object/left"), (4, "object/bottom")]),
        ("noise", "noise.png", "What is in the picture?", noise,
         [(1, "object/square"), (2, "object/circle"), (5, "object/dots")]),
    ]


def patches_of(processor, ids, wanted):
    """Patches (row-major on the 8x8 grid) with at least one pixel of instance `wanted`, through HF's geometry."""
    ip = processor.image_processor
    h, w = ids.shape
    size = get_resize_output_image_size(ids[..., None], size=ip.size["shortest_edge"], default_to_square=False,
                                        input_data_format=ChannelDimension.LAST)
    raster = ids[None].astype(np.float32)  # [1, h, w], channels first
    if tuple(size) != (h, w):
        raster = resize(raster, size, resample=PILImageResampling.NEAREST, input_data_format=ChannelDimension.FIRST)
    crop = center_crop(raster, (ip.crop_size["height"], ip.crop_size["width"]), input_data_format=ChannelDimension.FIRST)
    grid = crop[0] == wanted
    side = B.IMAGE // B.PATCH
    return [r * side + c for r in range(side) for c in range(side)
            if grid[r * B.PATCH:(r + 1) * B.PATCH, c * B.PATCH:(c + 1) * B.PATCH].any()]


def rank(z, t):
    zt = z[t]
    v = torch.arange(z.shape[0])
    return int(1 + (z > zt).sum() + ((z == zt) & (v < t)).sum())


def main():
    torch.manual_seed(B.SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model = B.build_model()
    tokenizer = B.make_tokenizer()
    processor = LlavaProcessor(image_processor=B.image_processor(), tokenizer=tokenizer, patch_size=B.PATCH,
                               vision_feature_select_strategy="default", chat_template=B.CHAT_TEMPLATE,
                               image_token=B.IMAGE_TOKEN)
    lm = model.language_model
    reference = read_safetensors(os.path.join(B.OUT, "reference.safetensors"))
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "images"))
    os.makedirs(os.path.join(OUT, "masks"))

    captured = {}
    lm.model.layers[-1].register_forward_hook(lambda _m, _i, out: captured.__setitem__("last", out[0]))
    items, cases, min_gap_all = [], [], float("inf")
    with torch.no_grad():
        for item_id, png, question, ids, parts in masks():
            rgb = np.array(Image.open(os.path.join(B.OUT, png)).convert("RGB"))
            assert rgb.shape[:2] == ids.shape, (png, rgb.shape, ids.shape)
            shutil.copyfile(os.path.join(B.OUT, png), os.path.join(OUT, "images", png))
            Image.fromarray(ids, "L").save(os.path.join(OUT, "masks", png))
            prompt = processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
                                                   add_generation_prompt=True)
            enc = processor(images=Image.fromarray(rgb, "RGB"), text=prompt, return_tensors="pt")
            res = model(input_ids=enc["input_ids"], pixel_values=enc["pixel_values"],
                        attention_mask=torch.ones_like(enc["input_ids"]), output_hidden_states=True, return_dict=True)
            case_name = {"wide": "image-wide", "noise": "image-noise"}[item_id]
            ref = reference[f"{case_name}/logits"]
            drift = float(np.abs(res.logits.numpy() - ref).max())
            assert drift <= 1e-5, f"{case_name}: rebuilt model's logits differ from the fixture's reference by {drift}"
            hidden = list(res.hidden_states[:-1]) + [captured["last"]]
            normed_last = lm.model.norm(captured["last"])
            assert torch.equal(normed_last, res.hidden_states[-1]), "hook output is not the final norm's input"
            assert torch.equal(lm.lm_head(normed_last), res.logits)
            logits = [lm.lm_head(lm.model.norm(h))[0] for h in hidden]  # per layer [seq, vocab]
            positions = [i for i, t in enumerate(enc["input_ids"][0].tolist()) if t == B.IMAGE_TOKEN_ID]
            assert len(positions) == B.N_IMAGE_TOKENS
            out_parts, skipped = [], []
            for inst, name in parts:
                text = name.split("/")[-1]
                token_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
                assert token_ids and token_ids[0] != B.UNK_ID, name
                t = token_ids[0]
                cells = patches_of(processor, ids, inst)
                if not cells:
                    skipped.append(name)
                    continue
                pos = [positions[c] for c in cells]
                ranks, gaps = [], []
                for z in logits:
                    ranks.append(min(rank(z[p], t) for p in pos))
                    gap = min(float((torch.cat([z[p][:t], z[p][t + 1:]]) - z[p][t]).abs().min()) for p in pos)
                    gaps.append(gap)
                min_gap_all = min(min_gap_all, *gaps)
                out_parts.append({"name": name, "text": text, "token_id": t, "instance": inst, "patches": cells,
                                  "positions": pos, "ranks": ranks, "min_gap": gaps})
            cases.append({"item": item_id, "image": f"images/{png}", "question": question, "prompt": prompt,
                          "reference_logits_drift": drift, "parts": out_parts, "skipped": skipped})
            items.append({"id": item_id, "images": [f"images/{png}"], "prompt": question,
                          "labels": [{"kind": "mask", "image": 0, "file": f"masks/{png}", "ids": [inst], "name": name}
                                     for inst, name in parts]})
    B.dump(os.path.join(OUT, "dataset.json"), {
        "format": "loupe-dataset", "version": 1, "name": "hf-llava/parts", "task": "object-parts",
        "description": "The hf-llava fixture's two images with part masks (object/<part>) for the LogitLens check.",
        "source": {"generator": GENERATOR}, "items": items})
    B.dump(os.path.join(OUT, "expected.json"), {
        "generator": GENERATOR, "transformers_version": B.transformers.__version__, "torch_version": torch.__version__,
        "layers": "hidden_states 0..L: 0 = embeddings, l = output of decoder layer l-1 before the final norm",
        "lens": "language_model.lm_head(language_model.model.norm(h))",
        "tie_rule": "rank = 1 + #{v: z_v > z_t} + #{v < t: z_v == z_t}; part rank = min over its patches",
        "patches": "HF resize (NEAREST) + center_crop of the id raster; patches with >= 1 part pixel",
        "min_gap_overall": min_gap_all, "cases": cases})
    print(f"wrote {OUT}: {sum(len(c['parts']) for c in cases)} parts ranked, skipped {[c['skipped'] for c in cases]}, "
          f"min logit gap {min_gap_all:.3g}")


if __name__ == "__main__":
    main()
