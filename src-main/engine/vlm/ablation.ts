/**
 * What the compute worker needs to turn an ablation spec into per-step attention biases:
 * the vision tower's token layout (CLS + patch grid) and the LLM's image-token positions with
 * their patch index. Also what a UI needs to preview a mask for a prompt (with
 * src-shared/ablation/mask.ts).
 *
 * Vision layouts are known for LLaVA-style towers (CLIP: CLS + rows×cols patches; SigLIP: patches
 * only) and PaliGemma's SigLIP. Qwen2-VL (packed patches, windowed attention), Idefics3 (tiles) and anyres
 * LLaVA-NeXT / LLaVA-OneVision (a base view and a variable number of crops per image, run as one batch) vision
 * towers are refused for vision edits; LLM edits work for every family.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { type TokenLayout, visionLayout } from '../../../src-shared/ablation/mask.ts';
import { type AblationPart, type AblationSpec, ablatedParts } from '../../../src-shared/ablation/spec.ts';
import { refuseTokenAblation } from '../../../src-shared/ablation/mask.ts';
import type { VlmAblation } from '../../compute/vlm/types.ts';
import { type ModelFolder, textConfigOf } from '../model-folder.ts';
import { isAnyres } from './anyres-images.ts';
import { type ImageTokenPosition, llavaGrid } from './token-map.ts';

/** The vision tower's token layout, or undefined when Loupe does not know it for this family. */
export function visionTokenLayout(folder: ModelFolder): TokenLayout | undefined {
  // PaliGemma's tower is a plain SigLIP over one whole-image grid (no CLS), as LLaVA-OneVision's base view.
  if (folder.family !== 'llava' && folder.family !== 'llava-onevision' && folder.family !== 'paligemma') return undefined;
  if (isAnyres(folder)) return undefined; // base view + crops as one batch: no single-crop layout applies
  const grid = llavaGrid(folder.config);
  const type = String((folder.config.vision_config as { model_type?: string } | undefined)?.model_type ?? 'clip_vision_model');
  return visionLayout({ cls: type.includes('siglip') ? 0 : 1, rows: grid.rows, cols: grid.cols });
}

/**
 * Image tokens with a row-major patch index within their image/tile (−1 for prefix tokens such as a kept CLS, and for
 * anyres image_newline tokens). The grid width is the image's widest tile: every tile of an image has the same patch
 * grid in every family Loupe maps, and an anyres crop cut by unpadding lists only some of its columns.
 */
export function llmImageTokens(tokens: readonly ImageTokenPosition[]): { position: number; patch: number }[] {
  const cols = new Map<number, number>();
  for (const t of tokens) cols.set(t.image, Math.max(cols.get(t.image) ?? 0, t.col + 1));
  return tokens.map((t) => ({ position: t.position, patch: t.row < 0 ? -1 : t.row * cols.get(t.image)! + t.col }));
}

export function attentionHeads(folder: ModelFolder, part: AblationPart): number {
  const cfg = (part === 'vision' ? folder.config.vision_config : textConfigOf(folder.config)) as { num_attention_heads?: number } | undefined;
  const h = Number(cfg?.num_attention_heads);
  if (!Number.isInteger(h) || h <= 0) throw new LoupeError('bad-input', `config.json ${part === 'vision' ? 'vision_config' : 'text_config'} lacks num_attention_heads`);
  return h;
}

/** Refuses what cannot be applied to this model before any graph is rewritten. */
export function checkAblation(folder: ModelFolder, spec: AblationSpec): void {
  refuseTokenAblation(spec);
  if (ablatedParts(spec).has('vision') && !visionTokenLayout(folder)) {
    throw new LoupeError('bad-input', `vision-tower attention edits need the tower's token layout, which Loupe knows only for LLaVA-style CLIP/SigLIP towers, not ${folder.family}`);
  }
}

/** The worker's ablation request for one forward (layouts always; the spec when given). */
export function ablationRequest(folder: ModelFolder, spec: AblationSpec | undefined, imageTokens: readonly ImageTokenPosition[], promptLength: number): VlmAblation {
  if (spec) checkAblation(folder, spec);
  const parts = spec ? ablatedParts(spec) : new Set<AblationPart>();
  // Heads matter only for head-specific edits; all-zero biases use one head.
  const heads = (part: AblationPart) => (parts.has(part) ? attentionHeads(folder, part) : 1);
  let vision: TokenLayout | undefined;
  try {
    vision = visionTokenLayout(folder);
  } catch (e) {
    if (parts.has('vision')) throw e;
  }
  return {
    ...(spec && { spec }),
    ...(vision && { vision: { layout: vision, heads: heads('vision') } }),
    llm: { promptLength, imageTokens: llmImageTokens(imageTokens), heads: heads('llm') },
  };
}
