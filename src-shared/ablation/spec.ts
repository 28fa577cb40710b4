/**
 * Ablation specs: what to knock out or re-weight in a forward pass. Pure data (zod), stored
 * with the run, previewable in the UI through the pure mask builder (mask.ts).
 *
 * An attention edit names a tower (`part`), layers, heads and an edge set `queries → keys`
 * between token sets, and what to do with those edges:
 *   - `block`: the edge's pre-softmax score gets −1e9 added (exp underflows to exactly 0 in
 *     float32). The diagonal (a query attending to its own position) is NEVER blocked, so no
 *     row is ever fully masked (a fully masked row is NaN in softmax kernels).
 *   - `scale`: the edge's unnormalised weight exp(score) is multiplied by `factor`
 *     (log(factor) added to the score); the row is then renormalised by the softmax.
 * Token sets are resolved against the forward pass's token layout (mask.ts):
 *   all · cls · patches (all, or listed patch indices, row-major in the patch grid) ·
 *   image (LLM: every image token; vision: every token) · text (LLM: every non-image token) ·
 *   last (LLM: the last prompt token) · positions (explicit sequence positions).
 * `excludeSelf` drops the edges from a token to itself, so "patch → other patches" is
 * `{ queries: patches, keys: patches, excludeSelf: true }`.
 *
 * Token ablation (`zero` / `mean` of a token's residual stream at chosen layers) is part of
 * the schema so specs are stable, but the engine refuses it for now (see the report / the
 * error it raises): no surgery on the residual stream is implemented yet.
 */
import { z } from 'zod';

export const AblationPart = z.enum(['vision', 'llm']);
export type AblationPart = z.infer<typeof AblationPart>;

const Index = z.number().int().nonnegative();

export const TokenSet = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('cls') }).strict(),
  /** Patch tokens; `indices` are row-major patch indices (row · cols + col); absent = every patch. */
  z.object({ kind: z.literal('patches'), indices: z.array(Index).min(1).optional() }).strict(),
  z.object({ kind: z.literal('image') }).strict(),
  z.object({ kind: z.literal('text') }).strict(),
  z.object({ kind: z.literal('last') }).strict(),
  z.object({ kind: z.literal('positions'), positions: z.array(Index).min(1) }).strict(),
]);
export type TokenSet = z.infer<typeof TokenSet>;

const Layers = z.union([z.literal('all'), z.array(Index).min(1)]);
const Heads = z.union([z.literal('all'), z.array(Index).min(1)]);

const attentionBase = {
  part: AblationPart,
  layers: Layers.default('all'),
  heads: Heads.default('all'),
  queries: TokenSet,
  keys: TokenSet,
  /** Leave out the edges from a token to itself. */
  excludeSelf: z.boolean().default(false),
};

export const BlockEdit = z.object({ op: z.literal('block'), ...attentionBase }).strict();
export const ScaleEdit = z
  .object({
    op: z.literal('scale'),
    ...attentionBase,
    /** Multiplies exp(score) of every edge in the set; > 0 (use `block` for 0). */
    factor: z.number().positive().finite(),
  })
  .strict();

/** Residual-stream token ablation — in the schema, refused by the engine for now. */
export const TokenEdit = z
  .object({
    op: z.enum(['zero', 'mean']),
    part: AblationPart,
    layers: Layers.default('all'),
    tokens: TokenSet,
    /** For `mean`: the run whose stored activations give the mean. */
    referenceRunId: z.string().optional(),
  })
  .strict();

export const AblationEdit = z.discriminatedUnion('op', [BlockEdit, ScaleEdit, TokenEdit]);
export type AblationEdit = z.infer<typeof AblationEdit>;
export type AttentionEdit = z.infer<typeof BlockEdit> | z.infer<typeof ScaleEdit>;
export type TokenEdit = z.infer<typeof TokenEdit>;

export const AblationSpec = z
  .object({
    edits: z.array(AblationEdit).min(1).max(64),
  })
  .strict();
export type AblationSpec = z.infer<typeof AblationSpec>;

export function isAttentionEdit(e: AblationEdit): e is AttentionEdit {
  return e.op === 'block' || e.op === 'scale';
}

/** The additive value used for blocked edges (float32; exp(−1e9 − max) is exactly 0). */
export const BLOCK_BIAS = -1e9;

/** Which towers a spec touches. */
export function ablatedParts(spec: AblationSpec): Set<AblationPart> {
  return new Set(spec.edits.map((e) => e.part));
}
