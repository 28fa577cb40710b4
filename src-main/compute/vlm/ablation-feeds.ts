/**
 * Attention-bias feeds for sessions rewritten by engine/graph/ablation.ts: one
 * `loupe_attn_bias.<layer>` input per layer, [1, heads or 1, q, k]. Built per step from the
 * spec (src-shared/ablation/mask.ts); layers no edit touches get zeros [1, 1, q, k], which
 * leave the outputs bit-identical to the unedited graph.
 */
import * as ort from 'onnxruntime-node';
import { type TokenLayout, attentionBiases, biasInputLayer, llmLayout } from '../../../src-shared/ablation/mask.ts';
import type { AblationSpec } from '../../../src-shared/ablation/spec.ts';
import { float32ToFloat16 } from '../../../src-shared/tensor/dtype.ts';
import type { VlmAblation } from './types.ts';

/** Bias layers a session declares (input name → layer). */
export function biasInputs(session: ort.InferenceSession): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of session.inputNames) {
    const layer = biasInputLayer(name);
    if (layer !== undefined) out.set(layer, name);
  }
  return out;
}

function tensorFor(session: ort.InferenceSession, name: string, data: Float32Array, dims: number[]): ort.Tensor {
  const m = session.inputMetadata.find((x) => x.name === name);
  const type = m && m.isTensor ? m.type : 'float32';
  if (type === 'float16') {
    // −1e9 is not representable: the most negative finite half still zeroes exp() after the max subtraction.
    return new ort.Tensor('float16', Uint16Array.from(data, (v) => float32ToFloat16(Math.max(v, -65504))), dims);
  }
  if (type !== 'float32') throw new Error(`attention-bias input ${name} has type ${type}; only float32/float16 are supported`);
  return new ort.Tensor('float32', data, dims);
}

/** Feeds for every bias input of `session` for one step with `layout`; throws when the spec edits a tower whose session has no bias inputs. */
export function biasFeeds(session: ort.InferenceSession, layout: TokenLayout, edit: { spec?: AblationSpec | undefined; heads: number } | undefined, what: string): Record<string, ort.Tensor> {
  const inputs = biasInputs(session);
  const feeds: Record<string, ort.Tensor> = {};
  const q = layout.length - layout.past;
  const k = layout.length;
  const wanted = edit?.spec?.edits.some((e) => e.part === layout.part && (e.op === 'block' || e.op === 'scale'));
  if (wanted && inputs.size === 0) throw new Error(`the ${what} session has no attention-bias inputs: open the model with the ablation rewrite to apply ${layout.part} edits`);
  const biases = wanted ? attentionBiases(edit!.spec!, layout, { layers: [...inputs.keys()].sort((a, b) => a - b), heads: edit!.heads }) : new Map();
  for (const [layer, name] of inputs) {
    const b = biases.get(layer);
    feeds[name] = b ? tensorFor(session, name, b.data, [1, b.heads, b.q, b.k]) : tensorFor(session, name, new Float32Array(q * k), [1, 1, q, k]);
  }
  return feeds;
}

/** The LLM layout of a step: prompt prefill (past 0) or one generated token (past = total − 1). */
export function llmStepLayout(ablation: VlmAblation | undefined, promptLength: number, total: number, past: number): TokenLayout {
  return llmLayout({ length: total, past, promptLength, imageTokens: ablation?.llm?.imageTokens ?? [] });
}
