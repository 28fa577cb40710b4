/**
 * Renders one layer/head of an attention bias as an image: kept edges dark, blocked edges
 * red, scaled edges blue (down-weighted) or green (up-weighted) by |log factor|. In the LLM,
 * edges to later positions are drawn near-black whatever the bias says: causal attention masks
 * them anyway, so showing them red would suggest the spec removes something it cannot.
 */
import type { LayerBias, TokenLayout } from '../../../../src-shared/ablation/mask.ts';
import { BLOCK_BIAS } from '../../../../src-shared/ablation/spec.ts';

export const CAUSALLY_MASKED_RGB = [22, 24, 29] as const;

export function paintBias(canvas: HTMLCanvasElement, bias: LayerBias | undefined, head: number, q: number, k: number, layout?: Pick<TokenLayout, 'part' | 'past'>): void {
  canvas.width = k;
  canvas.height = q;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const img = ctx.createImageData(k, q);
  const h = bias && bias.heads > 1 ? Math.min(head, bias.heads - 1) : 0;
  const causal = layout?.part === 'llm';
  const past = layout?.past ?? 0;
  for (let i = 0; i < q; i++) {
    for (let j = 0; j < k; j++) {
      const v = bias ? bias.data[(h * bias.q + i) * bias.k + j]! : 0;
      const at = (i * k + j) * 4;
      const [r, g, b] =
        causal && j > past + i ? CAUSALLY_MASKED_RGB : v <= BLOCK_BIAS / 2 ? [239, 107, 107] : v < 0 ? [40, 60, Math.min(255, 90 + 60 * -v)] : v > 0 ? [40, Math.min(255, 90 + 60 * v), 60] : [37, 41, 50];
      img.data[at] = r;
      img.data[at + 1] = g;
      img.data[at + 2] = b;
      img.data[at + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}
