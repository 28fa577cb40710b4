/**
 * Attention ablation by graph surgery: every attention site (attention-sites.ts) gets an
 * additive bias on its pre-softmax scores, read from a new graph input per layer,
 * `loupe_attn_bias.<layer>` of shape [1, heads or 1, q, k] (the scores' float type). One
 * rewritten graph serves every spec: the masks are computed per run (src-shared/ablation/mask.ts)
 * and fed; an all-zero bias leaves every output bit-identical to the unedited graph (x + 0 = x).
 *
 *   softmax, rank 4 ([b, heads, q, k])   Add(scores, bias) → Softmax.
 *   softmax, other ranks                 PyTorch fused MHA gives [b·heads, q, k]; 5-D GQA exports
 *                                        [b, kv, group, q, k]. The scores are reshaped to
 *                                        [-1, heads_of_bias, q, k], biased, and reshaped back,
 *                                        so heads keep their order (head = kv·group + g; b-major).
 *   onnx-attention                       bias → `attn_mask` (input 3); a float mask already
 *                                        there is summed with it; a bool mask is refused.
 *   ms-attention / ms-mha / gqa          bias → `attention_bias` (input 5 / 5 / 10), summed with
 *                                        an existing one; skipped optional inputs padded with ''.
 * Sites inside If/Loop subgraphs read the main-graph input from the outer scope.
 *
 * `rewrittenModelPath` caches the rewritten copy next to the original, like `tappedModelPath`,
 * and composes with taps: one file holds both.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType, NodeProtoSchema, TensorProto_DataType, ValueInfoProtoSchema } from 'onnx-buf';
import type { ModelProto, NodeProto } from 'onnx-buf';
import { BIAS_INPUT_PREFIX, biasInputLayer, biasInputName } from '../../../src-shared/ablation/mask.ts';
import { type AttentionSite, AttentionSiteError, findAttentionSites } from './attention-sites.ts';
import { indexGraph } from './graph-index.ts';
import { decodeModel, encodeModel, opsetVersion } from './model-proto.ts';
import { TAP_FORMAT_VERSION, addTapsInPlace, tappedModelPath } from './taps.ts';
import { writeFileAtomic } from '../../util/atomic-write.ts';

/** Bump when the rewrite changes, so cached rewritten files from older code are not reused. */
export const ABLATION_FORMAT_VERSION = 2;
export { BIAS_INPUT_PREFIX, biasInputLayer, biasInputName };

export class AblationGraphError extends Error {
  override name = 'AblationGraphError';
}

export interface AblationGraph {
  stack: string;
  /** Layer → bias input name. */
  inputs: Map<number, string>;
  /** How each site was wired, for reports and tests. */
  sites: { layer: number; kind: AttentionSite['kind']; node: string; scope: string; how: string }[];
  notes: string[];
}

const ATTR = AttributeProto_AttributeType;

function node(opType: string, name: string, input: string[], output: string[], attribute: NodeProto['attribute'] = []): NodeProto {
  return create(NodeProtoSchema, { opType, name, input, output, attribute });
}

function int64Constant(name: string, values: number[]): NodeProto {
  return node('Constant', `${name}/Constant`, [], [name], [
    { name: 'value', type: ATTR.TENSOR, t: { name, dims: [BigInt(values.length)], dataType: TensorProto_DataType.INT64, int64Data: values.map(BigInt) } } as never,
  ]);
}

/** Inserts `nodes` right before `before` in its graph (keeps the topological order). */
function insertBefore(site: AttentionSite, nodes: NodeProto[]): void {
  const list = site.scope.graph.node;
  const at = list.indexOf(site.node);
  if (at < 0) throw new AblationGraphError(`internal: node "${site.node.name}" not found in ${site.scope.label}`);
  list.splice(at, 0, ...nodes);
}

function setInput(n: NodeProto, slot: number, name: string): void {
  while (n.input.length <= slot) n.input.push('');
  n.input[slot] = name;
}

/**
 * Rewrites `model` in place so every attention site of its main layer stack adds
 * `loupe_attn_bias.<layer>` to its scores. Throws AttentionSiteError / AblationGraphError
 * naming the node where a site cannot be biased.
 */
export function addAttentionBiasInPlace(model: ModelProto, opts: { label?: string } = {}): AblationGraph {
  const graph = model.graph;
  if (!graph) throw new AblationGraphError(`${opts.label ?? 'model'}: no graph`);
  if (graph.input.some((v) => v.name.startsWith(BIAS_INPUT_PREFIX))) throw new AblationGraphError(`${opts.label ?? 'model'}: already has attention-bias inputs (rewritten twice?)`);
  const found = findAttentionSites(model, opts);
  const opset = opsetVersion(model, '') ?? 1;
  const types = new Map<number, TensorProto_DataType>();
  const out: AblationGraph = { stack: found.stack, inputs: new Map(), sites: [], notes: [...found.notes] };

  for (const site of found.sites) {
    const bias = biasInputName(site.layer);
    const prev = types.get(site.layer);
    if (prev !== undefined && prev !== site.elemType) throw new AblationGraphError(`layer ${site.layer}: attention sites in different branches use different float types`);
    types.set(site.layer, site.elemType);
    const base = `${site.node.name || site.node.output[0]}/loupe_ablate`;
    let how: string;
    if (site.kind === 'softmax') {
      const scores = site.node.input[0]!;
      const biased = `${base}/biased`;
      if (site.rank === 4) {
        insertBefore(site, [node('Add', `${base}/Add`, [scores, bias], [biased])]);
        how = 'Add before Softmax';
      } else {
        if (opset < 10) throw new AblationGraphError(`Softmax "${site.node.name}": scores of rank ${site.rank ?? 'unknown'} need a reshape (Slice with inputs), which needs opset ≥ 10; the model has opset ${opset}`);
        const t = (s: string) => `${base}/${s}`;
        insertBefore(site, [
          node('Shape', t('Shape'), [scores], [t('scores_shape')]),
          int64Constant(t('minus2'), [-2]),
          int64Constant(t('end'), [2 ** 53]),
          int64Constant(t('zero'), [0]),
          int64Constant(t('one'), [1]),
          int64Constant(t('two'), [2]),
          int64Constant(t('minus1'), [-1]),
          node('Slice', t('Slice_qk'), [t('scores_shape'), t('minus2'), t('end'), t('zero')], [t('qk')]),
          node('Shape', t('Shape_bias'), [bias], [t('bias_shape')]),
          node('Slice', t('Slice_heads'), [t('bias_shape'), t('one'), t('two'), t('zero')], [t('heads')]),
          node('Concat', t('Concat'), [t('minus1'), t('heads'), t('qk')], [t('shape4')], [{ name: 'axis', type: ATTR.INT, i: 0n } as never]),
          node('Reshape', t('Reshape_in'), [scores, t('shape4')], [t('scores4')]),
          node('Add', t('Add'), [t('scores4'), bias], [t('biased4')]),
          node('Reshape', t('Reshape_out'), [t('biased4'), t('scores_shape')], [biased]),
        ]);
        how = `reshape rank-${site.rank ?? '?'} scores to [-1, heads, q, k], Add, reshape back`;
      }
      site.node.input[0] = biased;
    } else {
      const slot = site.biasSlot!;
      const existing = site.node.input[slot];
      if (existing) {
        const ix = indexGraph(site.scope.graph);
        const producer = ix.producer.get(existing);
        const castTo = producer?.node.opType === 'Cast' ? Number(producer.node.attribute.find((a) => a.name === 'to')?.i) : undefined;
        const declaredBool = [...site.scope.graph.input, ...site.scope.graph.valueInfo].find((v) => v.name === existing)?.type?.value;
        const isBool = castTo === TensorProto_DataType.BOOL || (declaredBool?.case === 'tensorType' && declaredBool.value.elemType === TensorProto_DataType.BOOL);
        if (isBool) throw new AblationGraphError(`${site.node.opType} "${site.node.name}": its mask input "${existing}" is boolean; combining it with an additive bias is not supported`);
        const sum = `${base}/bias_sum`;
        insertBefore(site, [node('Add', `${base}/Add`, [existing, bias], [sum])]);
        setInput(site.node, slot, sum);
        how = `summed with the existing input ${slot} "${existing}"`;
      } else {
        setInput(site.node, slot, bias);
        how = `wired to input ${slot}`;
      }
    }
    out.sites.push({ layer: site.layer, kind: site.kind, node: site.node.name, scope: site.scope.label, how });
  }
  for (const [layer, elemType] of [...types.entries()].sort((a, b) => a[0] - b[0])) {
    const name = biasInputName(layer);
    graph.input.push(
      create(ValueInfoProtoSchema, {
        name,
        type: {
          value: {
            case: 'tensorType',
            value: { elemType, shape: { dim: [{ value: { case: 'dimValue', value: 1n } }, ...['loupe_bias_heads', 'loupe_bias_q', 'loupe_bias_k'].map((p) => ({ value: { case: 'dimParam' as const, value: p } }))] } },
          },
        },
      }),
    );
    out.inputs.set(layer, name);
  }
  if (out.inputs.size === 0) throw new AttentionSiteError(`${opts.label ?? 'model'}: no attention sites found`);
  return out;
}

/** File name of a rewritten copy with taps and attention-bias inputs: `<stem>.loupe-taps-ablate-<hash>.onnx` (matches the `*.loupe-taps-*` ignore and twin rules). */
export function ablatedFileName(originalPath: string, originalBytes: Uint8Array, tensorNames: readonly string[]): string {
  const contentSha = createHash('sha256').update(originalBytes).digest('hex');
  const taps = [...new Set(tensorNames)].sort();
  const key = createHash('sha256').update(JSON.stringify({ content: contentSha, taps, tapFormat: TAP_FORMAT_VERSION, ablation: ABLATION_FORMAT_VERSION })).digest('hex');
  const stem = basename(originalPath, extname(originalPath));
  return join(dirname(originalPath), `${stem}.loupe-taps-ablate-${key.slice(0, 16)}.onnx`);
}

/**
 * Path of a rewritten copy of the model at `originalPath`: taps as outputs and, when
 * `ablation` is set, attention-bias inputs. Without ablation this is `tappedModelPath`.
 * Cached next to the original under a content hash, written to a temp file and renamed.
 */
export async function rewrittenModelPath(originalPath: string, opts: { taps: readonly string[]; ablation: boolean }): Promise<string> {
  if (!opts.ablation) return opts.taps.length ? tappedModelPath(originalPath, opts.taps) : originalPath;
  const bytes = new Uint8Array(await readFile(originalPath));
  const target = ablatedFileName(originalPath, bytes, opts.taps);
  if (existsSync(target)) return target;
  const model = decodeModel(bytes);
  // Bias first: a shadow-probability tap (attention-probs.ts) must read the biased attention_bias.
  addAttentionBiasInPlace(model, { label: originalPath });
  if (opts.taps.length) addTapsInPlace(model, opts.taps);
  const rewritten = encodeModel(model);
  await writeFileAtomic(target, rewritten);
  return target;
}
