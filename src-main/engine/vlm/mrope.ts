/**
 * Qwen2-VL / Qwen2.5-VL multimodal RoPE position ids (HF `get_rope_index`, images only):
 * text tokens advance all three axes together; an image's tokens take
 * (t, h, w) = offset + (frame, row, col) on the merged grid; text after an image resumes
 * at max + 1. Returns ids [3, seq] and the delta that decoding steps add to their index.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';

export interface ImageGrid {
  t: number;
  h: number;
  w: number;
}

export function mropePositionIds(inputIds: ArrayLike<bigint | number>, imageTokenId: number, grids: ImageGrid[], mergeSize: number): { ids: [number[], number[], number[]]; ropeDelta: number } {
  const seq = inputIds.length;
  const axes: [number[], number[], number[]] = [new Array<number>(seq), new Array<number>(seq), new Array<number>(seq)];
  let next = 0;
  let i = 0;
  let image = 0;
  while (i < seq) {
    if (Number(inputIds[i]) !== imageTokenId) {
      axes[0][i] = axes[1][i] = axes[2][i] = next++;
      i++;
      continue;
    }
    const g = grids[image++];
    if (!g) throw new LoupeError('bad-input', `prompt has more image-token runs than images (${grids.length})`);
    const gh = g.h / mergeSize;
    const gw = g.w / mergeSize;
    const count = g.t * gh * gw;
    let max = next;
    for (let k = 0; k < count; k++) {
      if (Number(inputIds[i + k]) !== imageTokenId) throw new LoupeError('bad-input', `image ${image - 1} expects ${count} image tokens from its grid ${g.t}×${g.h}×${g.w}/${mergeSize}², found fewer`);
      const t = Math.floor(k / (gh * gw));
      const r = Math.floor((k % (gh * gw)) / gw);
      const c = k % gw;
      axes[0][i + k] = next + t;
      axes[1][i + k] = next + r;
      axes[2][i + k] = next + c;
      max = Math.max(max, next + t, next + r, next + c);
    }
    next = max + 1;
    i += count;
  }
  if (image !== grids.length) throw new LoupeError('bad-input', `${grids.length} images but ${image} image-token runs in the prompt`);
  return { ids: axes, ropeDelta: next - seq };
}
