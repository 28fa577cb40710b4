/**
 * Ablation spec + token layout of one forward step → additive attention biases per layer.
 * Pure (no Node, no ORT), so the compute worker uses it for every step and a UI can use it to
 * preview a mask.
 *
 * Bias layout: `[1, heads, q, k]` (heads = 1 when every edit of the layer covers all heads),
 * float32, row-major; q = the step's query positions `past .. length-1`, k = every position
 * `0 .. length-1`. It is added to the pre-softmax scores, on top of the model's own (causal)
 * mask. Blocked edges get BLOCK_BIAS (−1e9); scaled edges log(factor), summed over edits. A
 * blocked edge wins over scales. The diagonal (query position = key position) is never blocked,
 * so every row keeps at least one finite score: causal decoders always allow the diagonal, and
 * a fully masked row would turn into NaN.
 */
import { LoupeError } from '../contract/errors.ts';
import { type AblationPart, type AblationSpec, type AttentionEdit, BLOCK_BIAS, type TokenSet, isAttentionEdit } from './spec.ts';

/** Graph input carrying layer N's bias in rewritten graphs (engine/graph/ablation.ts). */
export const BIAS_INPUT_PREFIX = 'loupe_attn_bias.';

export const biasInputName = (layer: number) => `${BIAS_INPUT_PREFIX}${layer}`;

/** Layer index of a bias input name, or undefined for other inputs. */
export function biasInputLayer(name: string): number | undefined {
  if (!name.startsWith(BIAS_INPUT_PREFIX)) return undefined;
  const n = Number(name.slice(BIAS_INPUT_PREFIX.length));
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

export type TokenRole = 'cls' | 'patch' | 'text';

export interface TokenLayout {
  part: AblationPart;
  /** Number of key positions (past + this step). */
  length: number;
  /** Queries are positions `past .. length-1` (0 for a prefill / the vision tower). */
  past: number;
  /** Per position 0..length-1. In the LLM, image tokens are `patch` (or `cls` for prefix tokens such as a kept CLS). */
  roles: TokenRole[];
  /** Per position: row-major patch index in its image's grid, −1 when not a patch. */
  patch: number[];
  /** Position of the last prompt token (LLM); −1 in the vision tower. */
  lastPrompt: number;
}

/** Vision tower: optional CLS token(s) first, then rows×cols patches, row-major (CLIP/SigLIP-style ViT). */
export function visionLayout(opts: { cls: number; rows: number; cols: number }): TokenLayout {
  const n = opts.cls + opts.rows * opts.cols;
  const roles: TokenRole[] = [];
  const patch: number[] = [];
  for (let i = 0; i < n; i++) {
    roles.push(i < opts.cls ? 'cls' : 'patch');
    patch.push(i < opts.cls ? -1 : i - opts.cls);
  }
  return { part: 'vision', length: n, past: 0, roles, patch, lastPrompt: -1 };
}

/**
 * LLM sequence: `promptLength` prompt tokens (image tokens listed with their patch index, −1 for
 * prefix tokens such as a kept CLS), then generated tokens up to `length`; queries from `past`.
 */
export function llmLayout(opts: { length: number; past?: number; promptLength: number; imageTokens: readonly { position: number; patch: number }[] }): TokenLayout {
  const roles: TokenRole[] = new Array<TokenRole>(opts.length).fill('text');
  const patch: number[] = new Array<number>(opts.length).fill(-1);
  for (const t of opts.imageTokens) {
    if (t.position < 0 || t.position >= opts.promptLength) throw new LoupeError('bad-input', `image token position ${t.position} is outside the prompt (${opts.promptLength} tokens)`);
    if (t.position >= opts.length) continue;
    roles[t.position] = t.patch < 0 ? 'cls' : 'patch';
    patch[t.position] = t.patch;
  }
  const past = opts.past ?? 0;
  if (past < 0 || past >= opts.length) throw new LoupeError('bad-input', `past length ${past} must be in [0, ${opts.length})`);
  return { part: 'llm', length: opts.length, past, roles, patch, lastPrompt: opts.promptLength - 1 };
}

function describeSet(s: TokenSet): string {
  if (s.kind === 'patches') return s.indices ? `patches ${JSON.stringify(s.indices)}` : 'patches';
  if (s.kind === 'positions') return `positions ${JSON.stringify(s.positions)}`;
  return s.kind;
}

/** Which positions 0..length-1 a token set covers. Throws when the set is meaningless for the tower or selects nothing. */
export function resolveTokenSet(set: TokenSet, layout: TokenLayout): Uint8Array {
  const n = layout.length;
  const out = new Uint8Array(n);
  const vision = layout.part === 'vision';
  switch (set.kind) {
    case 'all':
      out.fill(1);
      break;
    case 'cls':
      layout.roles.forEach((r, i) => (out[i] = r === 'cls' ? 1 : 0));
      break;
    case 'patches': {
      const want = set.indices ? new Set(set.indices) : undefined;
      if (want) {
        const max = Math.max(-1, ...layout.patch);
        const bad = set.indices!.filter((p) => p > max);
        if (bad.length) throw new LoupeError('bad-input', `patch indices ${JSON.stringify(bad)} are outside the patch grid (0..${max})`);
      }
      layout.roles.forEach((r, i) => (out[i] = r === 'patch' && (!want || want.has(layout.patch[i]!)) ? 1 : 0));
      break;
    }
    case 'image':
      // In the vision tower every token belongs to the image.
      layout.roles.forEach((r, i) => (out[i] = vision || r !== 'text' ? 1 : 0));
      break;
    case 'text':
      if (vision) throw new LoupeError('bad-input', 'token set "text" has no meaning in the vision tower (it holds only CLS and patch tokens)');
      layout.roles.forEach((r, i) => (out[i] = r === 'text' ? 1 : 0));
      break;
    case 'last':
      if (vision || layout.lastPrompt < 0) throw new LoupeError('bad-input', 'token set "last" (the last prompt token) exists only in the LLM');
      if (layout.lastPrompt < n) out[layout.lastPrompt] = 1;
      break;
    case 'positions':
      for (const p of set.positions) {
        if (p < n) out[p] = 1;
        else if (layout.past === 0) throw new LoupeError('bad-input', `position ${p} is outside the ${layout.part === 'vision' ? 'vision tower\'s' : 'prompt\'s'} ${n} tokens`);
      }
      break;
  }
  if (!out.includes(1)) throw new LoupeError('bad-input', `token set "${describeSet(set)}" selects no token in this ${layout.part === 'vision' ? 'vision tower' : 'prompt'}`);
  return out;
}

export interface LayerBias {
  layer: number;
  /** 1 (same bias for every head) or the tower's head count. */
  heads: number;
  q: number;
  k: number;
  /** [1, heads, q, k] row-major. */
  data: Float32Array;
}

export interface BiasTarget {
  /** Layer indices the (rewritten) graph has, ascending; `'all'` means these. */
  layers: readonly number[];
  /** Attention heads per layer (query heads). */
  heads: number;
}

function editLayers(e: AttentionEdit, target: BiasTarget, part: AblationPart): number[] {
  if (e.layers === 'all') return [...target.layers];
  const have = new Set(target.layers);
  const missing = e.layers.filter((l) => !have.has(l));
  if (missing.length) {
    throw new LoupeError('bad-input', `${part} layer(s) ${missing.join(', ')} are not in the model's graph (it has ${part} layers ${target.layers.join(', ') || 'none'})`);
  }
  return [...new Set(e.layers)];
}

function editHeads(e: AttentionEdit, target: BiasTarget, part: AblationPart): number[] | 'all' {
  if (e.heads === 'all') return 'all';
  const bad = e.heads.filter((h) => h >= target.heads);
  if (bad.length) throw new LoupeError('bad-input', `${part} head(s) ${bad.join(', ')} do not exist (the ${part} layers have ${target.heads} heads)`);
  return [...new Set(e.heads)];
}

/**
 * The additive biases of one forward step, for the layers of `layout.part` that some edit
 * touches (layers absent from the map need no bias). Token ablation edits are ignored here
 * (the engine refuses them separately).
 */
export function attentionBiases(spec: AblationSpec, layout: TokenLayout, target: BiasTarget): Map<number, LayerBias> {
  const edits = spec.edits.filter(isAttentionEdit).filter((e) => e.part === layout.part);
  const q = layout.length - layout.past;
  const k = layout.length;
  // Pass 1: which layers are touched and whether any edit there is head-specific.
  const plan = new Map<number, { perHead: boolean; items: { edit: AttentionEdit; heads: number[] | 'all' }[] }>();
  for (const edit of edits) {
    const heads = editHeads(edit, target, layout.part);
    for (const layer of editLayers(edit, target, layout.part)) {
      let p = plan.get(layer);
      if (!p) plan.set(layer, (p = { perHead: false, items: [] }));
      if (heads !== 'all') p.perHead = true;
      p.items.push({ edit, heads });
    }
  }
  const sets = new Map<AttentionEdit, { qs: Uint8Array; ks: Uint8Array }>();
  for (const edit of edits) sets.set(edit, { qs: resolveTokenSet(edit.queries, layout), ks: resolveTokenSet(edit.keys, layout) });

  const out = new Map<number, LayerBias>();
  for (const [layer, p] of [...plan.entries()].sort((a, b) => a[0] - b[0])) {
    const H = p.perHead ? target.heads : 1;
    const sum = new Float32Array(H * q * k);
    const blocked = new Uint8Array(H * q * k);
    for (const { edit, heads } of p.items) {
      const { qs, ks } = sets.get(edit)!;
      const hs = heads === 'all' ? Array.from({ length: H }, (_, h) => h) : heads;
      const add = edit.op === 'scale' ? Math.log(edit.factor) : 0;
      for (let qi = 0; qi < q; qi++) {
        const i = layout.past + qi;
        if (!qs[i]) continue;
        for (let j = 0; j < k; j++) {
          if (!ks[j] || (i === j && (edit.excludeSelf || edit.op === 'block'))) continue;
          for (const h of hs) {
            const at = (h * q + qi) * k + j;
            if (edit.op === 'block') blocked[at] = 1;
            else sum[at]! += add;
          }
        }
      }
    }
    for (let x = 0; x < sum.length; x++) if (blocked[x]) sum[x] = BLOCK_BIAS;
    out.set(layer, { layer, heads: H, q, k, data: sum });
  }
  return out;
}

/** Token-ablation edits are in the schema but not implemented: the engine calls this to refuse them clearly. */
export function refuseTokenAblation(spec: AblationSpec): void {
  const token = spec.edits.filter((e) => !isAttentionEdit(e));
  if (token.length) {
    throw new LoupeError(
      'bad-input',
      `token ablation (${[...new Set(token.map((e) => e.op))].join(', ')}) is not implemented yet: only attention edits (block, scale) can be applied`,
    );
  }
}
