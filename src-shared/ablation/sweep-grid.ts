/**
 * Sweep grids for the compensation experiments ("LLMs can compensate"): one family of attention
 * edits grown layer by layer, k = 1…L (k = 0 is the sweep's intact run, which `sweeps/start`
 * always adds). Pure (no Node, no DOM), so the sweep composer previews exactly what is started.
 *
 * Layer indices follow spec.ts / the rewritten graphs: absolute 0-based indices of the tower's
 * transformer layers. A LLaVA export keeps vision layers 0…F only, F from `vision_feature_layer`
 * (−2 on a 4-layer CLIP tower keeps 0, 1, 2); "the last k vision layers" are the last k of those.
 *
 * Families:
 *   - `vision-patches`: patch↔patch (every patch → every other patch) blocked in the last k vision layers;
 *     `keys: 'all'` blocks patch → every other token *including CLS* (without it patches still reach
 *     each other through CLS — the paper's "patch → all"), `from: 'first'` grows the window from layer 0;
 *   - `vision-single`: the same edges in one vision layer at a time (one spec per layer);
 *   - `llm-text-image`: text → image blocked in k LLM layers, a window growing from the first or last layer;
 *   - `llm-image-image`: image patch ↔ image patch blocked in k LLM layers, growing the same way.
 * Blocked-edge counts come from the same mask builder the engine feeds the graph (mask.ts), on
 * the model's vision grid and, for the LLM, a sample prompt (text, the image's tokens, text).
 */
import { LoupeError } from '../contract/errors.ts';
import { type AblationPart, type AblationSpec, type AttentionEdit, BLOCK_BIAS, isAttentionEdit } from './spec.ts';
import { type LayerBias, type TokenLayout, attentionBiases, llmLayout, visionLayout } from './mask.ts';

export interface TowerShape {
  /** Layer indices the exported graph has, ascending. */
  layers: number[];
  heads: number;
}

export interface ModelShape {
  vision: TowerShape & { cls: number; rows: number; cols: number };
  llm: TowerShape;
}

type Cfg = Record<string, unknown>;
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const range = (n: number, from = 0) => Array.from({ length: Math.max(0, n) }, (_, i) => from + i);

/**
 * The towers of a model from its config.json: exported vision layers (LLaVA drops the layers after
 * `vision_feature_layer`), heads, the vision patch grid and whether the tower has a CLS token.
 */
export function modelShape(config: Cfg): ModelShape {
  const v = (config.vision_config ?? {}) as Cfg;
  const t = (config.text_config ?? config) as Cfg;
  const vTotal = num(v.num_hidden_layers) ?? num(v.depth) ?? 0;
  const feature = config.vision_feature_layer;
  // A list of feature layers (multi-layer projectors) keeps layers up to the deepest one.
  const deepest = Array.isArray(feature) ? Math.max(...feature.map((f) => (Number(f) < 0 ? vTotal + Number(f) : Number(f)))) : num(feature) === undefined ? vTotal - 1 : num(feature)! < 0 ? vTotal + num(feature)! : num(feature)!;
  const side = num(v.image_size) && num(v.patch_size) ? Math.floor(num(v.image_size)! / num(v.patch_size)!) : 0;
  return {
    vision: { layers: range(Math.min(vTotal, deepest + 1)), heads: num(v.num_attention_heads) ?? num(v.num_heads) ?? 1, cls: String(v.model_type ?? '').includes('siglip') ? 0 : 1, rows: side, cols: side },
    llm: { layers: range(num(t.num_hidden_layers) ?? 0), heads: num(t.num_attention_heads) ?? 1 },
  };
}

/** Text tokens before and after the image in the sample prompt used for LLM edge counts (as in the Ablation view). */
export const SAMPLE_PROMPT = { before: 4, after: 12 } as const;

/** The token layouts edge counts are computed on: the vision grid, and a sample prompt with one image. */
export function sampleLayouts(shape: ModelShape): Record<AblationPart, TokenLayout> {
  const { cls, rows, cols } = shape.vision;
  const n = rows * cols;
  const length = SAMPLE_PROMPT.before + n + SAMPLE_PROMPT.after;
  return {
    vision: visionLayout({ cls, rows, cols }),
    llm: llmLayout({ length, promptLength: length, imageTokens: range(n).map((i) => ({ position: SAMPLE_PROMPT.before + i, patch: i })) }),
  };
}

export type SweepFamily =
  | { kind: 'vision-patches'; from?: 'first' | 'last'; keys?: 'patches' | 'all' }
  | { kind: 'vision-single'; keys?: 'patches' | 'all' }
  | { kind: 'llm-text-image'; from: 'first' | 'last' }
  | { kind: 'llm-image-image'; from: 'first' | 'last' };

export interface SweepEntry {
  /** Short name of the spec, used for the run's name and the recovery table's column. */
  label: string;
  spec: AblationSpec;
}

/** k = step, 2·step, …, always ending at L (so the whole tower is the last entry). */
export function windowSizes(total: number, step = 1): number[] {
  if (!Number.isInteger(step) || step < 1) throw new LoupeError('bad-input', `sweep step must be a positive integer, not ${step}`);
  const ks = range(Math.floor(total / step), 1).map((i) => i * step);
  if (total > 0 && ks.at(-1) !== total) ks.push(total);
  return ks;
}

/** Layers of a k-layer window at the start or end of `layers`. */
export function windowLayers(layers: readonly number[], k: number, from: 'first' | 'last'): number[] {
  return from === 'first' ? layers.slice(0, k) : layers.slice(layers.length - k);
}

/** The ablation specs of a family, k = 1…L (step `step`); the intact run (k = 0) is implicit. */
export function sweepGrid(family: SweepFamily, shape: ModelShape, step = 1): SweepEntry[] {
  const block = (part: AblationPart, layers: number[], queries: AttentionEdit['queries'], keys: AttentionEdit['keys'], excludeSelf: boolean): AblationSpec => ({
    edits: [{ op: 'block', part, layers, heads: 'all', queries, keys, excludeSelf }],
  });
  const patches = { kind: 'patches' } as const;
  switch (family.kind) {
    case 'vision-patches':
    case 'vision-single': {
      const L = shape.vision.layers;
      if (!L.length) throw new LoupeError('bad-input', 'the model has no exported vision layers to ablate');
      const toAll = family.keys === 'all';
      const keys = toAll ? ({ kind: 'all' } as const) : patches;
      const edges = toAll ? 'patch→all' : 'patch↔patch';
      if (family.kind === 'vision-single') return L.map((l) => ({ label: `vision ${edges} · layer ${l}`, spec: block('vision', [l], patches, keys, true) }));
      const from = family.from ?? 'last';
      return windowSizes(L.length, step).map((k) => ({ label: `vision ${edges} · ${from} ${k}`, spec: block('vision', windowLayers(L, k, from), patches, keys, true) }));
    }
    case 'llm-text-image':
    case 'llm-image-image': {
      const L = shape.llm.layers;
      if (!L.length) throw new LoupeError('bad-input', 'the model has no LLM layers to ablate');
      const textImage = family.kind === 'llm-text-image';
      return windowSizes(L.length, step).map((k) => ({
        label: `llm ${textImage ? 'text→image' : 'patch↔patch'} · ${family.from} ${k}`,
        spec: textImage ? block('llm', windowLayers(L, k, family.from), { kind: 'text' }, { kind: 'image' }, false) : block('llm', windowLayers(L, k, family.from), patches, patches, true),
      }));
    }
  }
}

/** Refuses (bad-input) attention edits naming layers the exported graph lacks or heads the tower lacks; towers the config does not describe are not checked. */
export function checkLayers(spec: AblationSpec, shape: ModelShape): void {
  for (const e of spec.edits.filter(isAttentionEdit)) {
    const tower = shape[e.part];
    if (!tower.layers.length) continue;
    const missing = e.layers === 'all' ? [] : e.layers.filter((l) => !tower.layers.includes(l));
    if (missing.length) throw new LoupeError('bad-input', `${e.part} layer(s) ${missing.join(', ')} are not in the model's graph (it has ${e.part} layers ${tower.layers.join(', ')})`);
    const bad = e.heads === 'all' ? [] : e.heads.filter((h) => h >= tower.heads);
    if (bad.length) throw new LoupeError('bad-input', `${e.part} head(s) ${bad.join(', ')} do not exist (the ${e.part} layers have ${tower.heads} heads)`);
  }
}

export interface EdgeCount {
  /** Layers (either tower) some edit touches. */
  layers: number;
  /**
   * Blocked attention edges summed over layers × heads × (query → key) pairs of the sample
   * layouts; in the (causal) LLM only edges to earlier positions count, the others are masked anyway.
   */
  blocked: number;
}

/**
 * Blocked edges of a spec on the sample layouts, from the mask builder. Layers are grouped by the
 * edits touching them, and one representative layer per group is built (towers with many layers
 * and long prompts stay cheap). Throws (bad-input) for a spec the model cannot take, e.g. a layer
 * the graph lacks or a patch index outside the grid.
 */
export function blockedEdges(spec: AblationSpec, shape: ModelShape): EdgeCount {
  const layouts = sampleLayouts(shape);
  const out: EdgeCount = { layers: 0, blocked: 0 };
  for (const part of ['vision', 'llm'] as const) {
    const tower = shape[part];
    const edits = spec.edits.filter(isAttentionEdit).filter((e) => e.part === part);
    if (!edits.length) continue;
    if (!tower.layers.length) throw new LoupeError('bad-input', `config.json does not give the ${part} tower's layer count`);
    if (part === 'vision' && shape.vision.rows * shape.vision.cols === 0) throw new LoupeError('bad-input', 'config.json vision_config lacks image_size/patch_size: the patch grid is unknown');
    checkLayers({ edits }, shape);
    const groups = new Map<string, number[]>();
    for (const layer of tower.layers) {
      const key = edits.map((e, i) => (e.layers === 'all' || e.layers.includes(layer) ? i : -1)).filter((i) => i >= 0).join(',');
      if (key) groups.set(key, [...(groups.get(key) ?? []), layer]);
    }
    for (const [key, layers] of groups) {
      const only = key.split(',').map((i) => ({ ...edits[Number(i)]!, layers: [layers[0]!] }));
      const bias = attentionBiases({ edits: only }, layouts[part], tower).get(layers[0]!)!;
      out.layers += layers.length;
      out.blocked += layers.length * usableBlockedEdges(bias, layouts[part], tower.heads);
    }
  }
  return out;
}

/**
 * Blocked edges of one layer's bias that attention could otherwise use. In the causal LLM the
 * query at position i only ever sees keys j ≤ i, so a "blocked" edge to a later position changes
 * nothing and is not counted; the vision tower attends both ways and counts every edge. With
 * `head` the count is that head's; without it, summed over `heads` (a bias shared by every head,
 * `bias.heads === 1`, counts once per head). The one count the Ablation preview and the sweeps share.
 */
export function usableBlockedEdges(bias: LayerBias, layout: TokenLayout, heads: number, head?: number): number {
  const causal = layout.part === 'llm';
  const perHead = (h: number): number => {
    let n = 0;
    for (let qi = 0; qi < bias.q; qi++) {
      const i = layout.past + qi;
      const row = (h * bias.q + qi) * bias.k;
      const last = causal ? Math.min(i, bias.k - 1) : bias.k - 1;
      for (let j = 0; j <= last; j++) if (bias.data[row + j]! <= BLOCK_BIAS / 2) n++;
    }
    return n;
  };
  if (head !== undefined) return perHead(bias.heads > 1 ? Math.min(head, bias.heads - 1) : 0);
  if (bias.heads === 1) return heads * perHead(0);
  let n = 0;
  for (let h = 0; h < bias.heads; h++) n += perHead(h);
  return n;
}
