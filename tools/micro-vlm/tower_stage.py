"""Stage 1 of every recipe: the vision tower alone on the dense objective (dense.py), a stand-in
for the CLIP pretraining a LLaVA tower starts from. One loop for pretrain_vision.py,
train_turns.py and train_two_stage.py, so the three stay the same recipe.
"""
import math
import time

import numpy as np
import torch

from dense import dense_loss
from processor import preprocess
from train import lr_at


def train_tower(m, heads, examples, steps: int, batch: int, lr: float, rng: np.random.Generator,
                marker_weight: float = 0.0, letter_weight: float = 0.0, log=None, object_letter_weight: float = 0.0,
                shape_weight: float = 0.0):
    """`steps` AdamW steps (cosine, 100 warm-up steps, gradient clip 1) of the tower and the dense
    heads on `examples` (anything with `.item.images` and `.aux`), in an order drawn from `rng`
    (drawn even for 0 steps, so a recipe's later draws do not depend on it). Appends
    {stage, step, seconds, aux_loss} to `log` every 100 steps and at the last."""
    params = list(m.vision_tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    order = np.concatenate([rng.permutation(len(examples)) for _ in range(math.ceil(steps * batch / len(examples)) + 1)])
    t0, dev = time.time(), next(m.parameters()).device
    for step in range(steps):
        m.train()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, 100)
        chunk = [examples[i] for i in order[step * batch : (step + 1) * batch]]
        px = torch.from_numpy(preprocess(np.concatenate([np.asarray(e.item.images) for e in chunk]))).to(dev)
        targets = torch.from_numpy(np.concatenate([e.aux for e in chunk])).to(dev)
        states, _ = m.vision_states(px)
        loss = dense_loss(heads, [states[m.feature_layer_index()], states[-1]], targets, marker_weight, letter_weight, object_letter_weight, shape_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step + 1 == steps:
            print(f"vision step {step} aux {loss.item():.3f} {time.time() - t0:.0f}s", flush=True)
            if log is not None:
                log.append({"stage": "vision", "step": step, "seconds": round(time.time() - t0), "aux_loss": round(loss.item(), 4)})
