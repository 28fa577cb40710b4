"""The dense per-patch objective that stands in for CLIP pretraining of the vision tower.

Targets are data.patch_targets(..., with_centre=True): per 8x8 patch the colour / shape / style
of the object covering most of it (0 = background), the marker drawn there, whether it holds an
object's centre, and the object's depth z and the patch's offset from its centre. Linear heads on
the feature layer the LLM reads and on the last layer predict them; the heads are not shipped.
Used by pretrain_vision.py, train_turns.py and train_two_stage.py (train.py's first recipe has
its own 7-column version without the centre target).
"""
import torch
import torch.nn.functional as F
from torch import nn

from data import COLOURS, MARKERS, SHAPES, STYLES

# Target columns: colour, shape, style, marker, z, dx, dy, centre (+ the object's letter with `letters`).
CLASS_COLUMNS = [0, 1, 2, 3, 7]
CLASS_SIZES = [len(COLOURS) + 1, len(SHAPES) + 1, len(STYLES) + 1, len(MARKERS) + 1, 2]
REGRESSION_COLUMNS = [4, 5, 6]
ATTRIBUTE_COLUMNS = (0, 1, 2)  # the terms the marker weight applies to
SHAPE_COLUMN = 1


LETTER_CLASSES = len(MARKERS)  # none, a..d: data.patch_targets' 9th column


def dense_heads(d: int, position: bool = False, letters: bool = False) -> nn.ModuleList:
    """One linear head for the feature layer, one for the last layer (+2 outputs with `position`,
    then + LETTER_CLASSES with `letters`)."""
    heads = nn.ModuleList([nn.Linear(d, sum(CLASS_SIZES) + len(REGRESSION_COLUMNS) + 2 * position + LETTER_CLASSES * letters) for _ in range(2)])
    heads.position, heads.letters = position, letters  # the output layout dense_loss reads
    return heads


def patch_positions(n: int, device=None) -> torch.Tensor:
    """[n, 2] the (x, y) of each patch of a square grid, raster order, scaled to [-1, 1]."""
    side = int(round(n**0.5))
    g = torch.linspace(-1, 1, side, device=device)
    return torch.stack([g.repeat(side), g.repeat_interleave(side)], dim=1)


def dense_loss(heads, states, t, marker_weight: float = 0.0, letter_weight: float = 0.0, object_letter_weight: float = 0.0,
               shape_weight: float = 0.0):
    """Mean over the two heads of the per-column losses; states: two [N, 65, d], t: [N, 64, 8].
    The attribute terms of a patch with a marker weigh marker_weight + 1 times a plain patch's
    (the LLM reads point answers from that one patch). Heads built with `position` also regress
    each patch's own grid position, so the features the LLM reads keep where they are (relation
    questions compare positions; the LLM's RoPE moves queries and keys, not values).
    letter_weight: the marker-class term of a patch with a marker weighs letter_weight + 1 times a
    plain patch's (4 lettered patches of 64 otherwise barely register; referring reads them).
    With a 9th target column (heads built with `letters`), every patch also classifies the letter
    of the object it shows; a lettered object's patches weigh object_letter_weight + 1 times.
    shape_weight: the shape term of a patch showing an object weighs shape_weight + 1 times a
    background patch's (times the marker weight) — a tower that names every object's shape (count
    questions select by it) learns it slower than colour, and most patches are background."""
    total = 0.0
    w = 1 + marker_weight * (t[..., 3] > 0).float().reshape(-1)
    for head, h in zip(heads, states):
        out = head(h[:, 1:])
        o = 0
        for j, size in zip(CLASS_COLUMNS, CLASS_SIZES):
            ce = F.cross_entropy(out[..., o : o + size].reshape(-1, size), t[..., j].long().reshape(-1), reduction="none")
            weighted = j in ATTRIBUTE_COLUMNS
            if j == SHAPE_COLUMN and shape_weight:
                sw = w * (1 + shape_weight * (t[..., j] > 0).float().reshape(-1))
                total = total + (ce * sw).sum() / sw.sum()
            elif j == 3 and letter_weight:
                lw = 1 + letter_weight * (t[..., 3] > 0).float().reshape(-1)
                total = total + (ce * lw).sum() / lw.sum()
            else:
                total = total + (ce * (w if weighted else 1)).sum() / (w.sum() if weighted else len(ce))
            o += size
        reg, tt = out[..., o : o + len(REGRESSION_COLUMNS)], t[..., REGRESSION_COLUMNS]
        ok = ~torch.isnan(tt)
        total = total + 4 * F.mse_loss(reg[ok], tt[ok])
        o += len(REGRESSION_COLUMNS)
        with_letters = t.shape[-1] > 8
        assert with_letters == heads.letters, "letter targets and letter heads come together (dense_heads(letters=...))"
        if heads.position:
            xy = patch_positions(out.shape[1], out.device).expand(out.shape[0], -1, -1)
            total = total + F.mse_loss(out[..., o : o + 2], xy)
            o += 2
        if with_letters:
            ce = F.cross_entropy(out[..., o : o + LETTER_CLASSES].reshape(-1, LETTER_CLASSES), t[..., 8].long().reshape(-1), reduction="none")
            lw = 1 + object_letter_weight * (t[..., 8] > 0).float().reshape(-1)
            total = total + (ce * lw).sum() / lw.sum()
    return total / 2
