/**
 * Where a graph computes attention scores, per transformer layer, so an additive bias can be
 * wired in (ablation.ts). Layers come from the same name-based grouping as the tap catalogue
 * (layer-groups.ts), in the main graph and in every If/Loop subgraph (Optimum merged
 * decoders keep their layers inside If branches; each branch gets its own site).
 *
 * Recognised sites:
 *   softmax         a Softmax over the last axis whose probabilities are multiplied with V
 *                   (MatMul input 0, possibly through Cast/Identity/Dropout) — the exporters'
 *                   plain `MatMul → Mul → [Add mask] → Softmax → MatMul` pattern.
 *   onnx-attention  ai.onnx Attention (opset 23), input 3 `attn_mask`.
 *   ms-attention    com.microsoft Attention, input 5 `attention_bias`.
 *   ms-mha          com.microsoft MultiHeadAttention, input 5 `attention_bias` (`relative_position_bias` in older ORT).
 *   gqa             com.microsoft GroupQueryAttention, input 10 `attention_bias`.
 * Anything else that looks like attention is refused by name (AttentionSiteError), never
 * skipped: fused attention ops without an additive bias input (PackedAttention, SparseAttention,
 * DecoderMaskedMultiHeadAttention …), a layer whose Softmax does not feed a MatMul with V,
 * a Softmax over another axis, a layer with several attention sites, or no site at all.
 */
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { TensorProto_DataType } from 'onnx-buf';
import { type GraphIndex, indexGraph } from './graph-index.ts';
import { layerStacks } from './layer-groups.ts';
import { type GraphScope, allGraphs, opsetVersion } from './model-proto.ts';

export type AttentionSiteKind = 'softmax' | 'onnx-attention' | 'ms-attention' | 'ms-mha' | 'gqa';

export interface AttentionSite {
  layer: number;
  kind: AttentionSiteKind;
  /** The Softmax or the fused attention node. */
  node: NodeProto;
  scope: GraphScope;
  /** Fused ops: the input slot of the additive bias / float mask. */
  biasSlot?: number;
  /** Softmax sites: the rank of the scores when it could be worked out (4 = [b, heads, q, k]). */
  rank?: number;
  /** Element type (TensorProto.DataType) the bias must have. */
  elemType: TensorProto_DataType;
}

export interface AttentionSites {
  stack: string;
  /** Layer indices with a site, ascending (each may have one site per subgraph branch). */
  layers: number[];
  sites: AttentionSite[];
  notes: string[];
}

export class AttentionSiteError extends Error {
  override name = 'AttentionSiteError';
}

const MS = 'com.microsoft';
const FUSED_WITH_BIAS: Record<string, { kind: AttentionSiteKind; slot: number }> = {
  ':Attention': { kind: 'onnx-attention', slot: 3 },
  [`${MS}:Attention`]: { kind: 'ms-attention', slot: 5 },
  [`${MS}:MultiHeadAttention`]: { kind: 'ms-mha', slot: 5 },
  [`${MS}:GroupQueryAttention`]: { kind: 'gqa', slot: 10 },
};
/** Fused attention ops with no additive bias input we could use. */
const FUSED_WITHOUT_BIAS = new Set([
  'PackedAttention', 'PackedMultiHeadAttention', 'SparseAttention', 'PagedAttention', 'LongformerAttention', 'DecoderAttention',
  'DecoderMaskedMultiHeadAttention', 'DecoderMaskedSelfAttention', 'QAttention', 'QOrderedAttention', 'QOrderedLongformerAttention',
]);
const PROBS_PASS_THROUGH = new Set(['Cast', 'Identity', 'Dropout']);

const domainOf = (n: NodeProto) => (n.domain === 'ai.onnx' ? '' : n.domain);
const where = (label: string | undefined, scope: GraphScope) => `${label ? `${label}: ` : ''}graph "${scope.graph.name}" (${scope.label})`;

/** Every attention site of the model's main layer stack (or `opts.stack`), main graph and subgraphs. */
export function findAttentionSites(model: ModelProto, opts: { stack?: string; label?: string } = {}): AttentionSites {
  const scopes = [...allGraphs(model)].map((scope) => ({ scope, stacks: layerStacks(scope.graph) }));
  // The stack with most layers over all scopes, as the tap catalogue picks it.
  const count = new Map<string, number>();
  for (const { stacks } of scopes) for (const [name, groups] of stacks) count.set(name, Math.max(count.get(name) ?? 0, groups.length));
  if (count.size === 0) throw new AttentionSiteError(`${opts.label ?? 'model'}: found no transformer layers (nodes named layers.N, blocks.N, h.N …) in any graph`);
  const stack = opts.stack ?? [...count.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  if (!count.has(stack)) throw new AttentionSiteError(`${opts.label ?? 'model'}: no layer stack "${stack}"; stacks found: ${[...count.keys()].join(', ')}`);

  const notes: string[] = [];
  const sites: AttentionSite[] = [];
  const opset = opsetVersion(model, '') ?? 1;
  for (const { scope, stacks } of scopes) {
    const groups = stacks.get(stack);
    if (!groups) continue;
    const ix = indexGraph(scope.graph);
    for (const g of groups) {
      const nodes = g.nodes.map((at) => scope.graph.node[at]!);
      const found: AttentionSite[] = [];
      const refused: string[] = [];
      for (const node of nodes) {
        const fused = FUSED_WITH_BIAS[`${domainOf(node)}:${node.opType}`];
        if (fused) {
          found.push({ layer: g.index, kind: fused.kind, node, scope, biasSlot: fused.slot, elemType: elemTypeOf(ix, node.input[0]!, scope) ?? unknownType(opts.label, scope, node.input[0]!) });
        } else if (FUSED_WITHOUT_BIAS.has(node.opType)) {
          refused.push(`${domainOf(node) || 'ai.onnx'}::${node.opType} "${node.name}" has no additive attention-bias input`);
        } else if (node.opType === 'Softmax') {
          const feeds = probsConsumers(ix, node.output[0]!);
          if (!feeds.some((u) => u.opType === 'MatMul' && u.slot === 0)) {
            refused.push(`Softmax "${node.name}" feeds ${feeds.map((u) => `${u.opType} "${u.name}" (input ${u.slot})`).join(', ') || 'nothing'}, not a MatMul with V`);
            continue;
          }
          const rank = rankOf(ix, node.input[0]!, scope, new Map());
          const axisAttr = node.attribute.find((a) => a.name === 'axis');
          const axis = axisAttr ? Number(axisAttr.i) : opset >= 13 ? -1 : 1;
          if (axis !== -1 && !(rank !== undefined && axis === rank - 1)) {
            refused.push(`Softmax "${node.name}" normalises over axis ${axis}${rank !== undefined ? ` of a rank-${rank} tensor` : ''}, not over the keys (last axis)`);
            continue;
          }
          found.push({ layer: g.index, kind: 'softmax', node, scope, ...(rank !== undefined && { rank }), elemType: elemTypeOf(ix, node.input[0]!, scope) ?? unknownType(opts.label, scope, node.input[0]!) });
        }
      }
      if (found.length === 1) {
        if (refused.length) notes.push(`layer ${g.index}: using ${found[0]!.node.name}; also saw ${refused.join('; ')}`);
        sites.push(found[0]!);
      } else if (found.length > 1) {
        throw new AttentionSiteError(`${where(opts.label, scope)}: layer ${g.index} has ${found.length} attention sites (${found.map((s) => `${s.node.opType} "${s.node.name}"`).join(', ')}); one bias per layer cannot tell them apart`);
      } else {
        throw new AttentionSiteError(
          `${where(opts.label, scope)}: no attention site to bias in layer ${g.index}` + (refused.length ? ` — ${refused.join('; ')}` : ' — looked for a Softmax feeding MatMul(·, V), ONNX Attention, or com.microsoft Attention/MultiHeadAttention/GroupQueryAttention'),
        );
      }
    }
  }
  const layers = [...new Set(sites.map((s) => s.layer))].sort((a, b) => a - b);
  return { stack, layers, sites, notes };
}

function unknownType(label: string | undefined, scope: GraphScope, tensor: string): never {
  throw new AttentionSiteError(`${where(label, scope)}: could not work out the element type of "${tensor}" (needed for the bias input)`);
}

/** Consumers of the probabilities, looking through Cast/Identity/Dropout. */
function probsConsumers(ix: GraphIndex, name: string, depth = 0): { opType: string; name: string; slot: number }[] {
  const out: { opType: string; name: string; slot: number }[] = [];
  for (const u of ix.consumers.get(name) ?? []) {
    if (PROBS_PASS_THROUGH.has(u.node.opType) && u.slot === 0 && depth < 4) out.push(...probsConsumers(ix, u.node.output[0]!, depth + 1));
    else out.push({ opType: u.node.opType, name: u.node.name, slot: u.slot });
  }
  return out;
}

function declared(graph: GraphProto, name: string) {
  return graph.valueInfo.find((v) => v.name === name) ?? graph.input.find((v) => v.name === name) ?? graph.output.find((v) => v.name === name);
}

/** A tensor's declared value info in this scope or an enclosing one. */
function declaredAnywhere(scope: GraphScope, name: string) {
  for (let s: GraphScope | undefined = scope; s; s = s.owner?.parent) {
    const v = declared(s.graph, name);
    if (v) return v;
  }
  return undefined;
}

const ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Where', 'Max', 'Min']);
const UNARY = new Set(['Softmax', 'Cast', 'Identity', 'Neg', 'Sqrt', 'Exp', 'Tanh', 'Erf', 'Relu', 'Dropout', 'Softcap', 'Clip']);

/** Rank of a tensor from declarations and simple shape rules; undefined when unsure. */
export function rankOf(ix: GraphIndex, name: string, scope: GraphScope, memo: Map<string, number | undefined>, depth = 0): number | undefined {
  if (memo.has(name)) return memo.get(name);
  memo.set(name, undefined);
  const r = rankUncached(ix, name, scope, memo, depth);
  memo.set(name, r);
  return r;
}

function rankUncached(ix: GraphIndex, name: string, scope: GraphScope, memo: Map<string, number | undefined>, depth: number): number | undefined {
  const v = declaredAnywhere(scope, name);
  if (v?.type?.value.case === 'tensorType' && v.type.value.value.shape) return v.type.value.value.shape.dim.length;
  const init = ix.graph.initializer.find((t) => t.name === name);
  if (init) return init.dims.length;
  if (depth > 48) return undefined;
  const p = ix.producer.get(name);
  if (!p) return undefined;
  const n = p.node;
  const sub = (t: string) => (t ? rankOf(ix, t, scope, memo, depth + 1) : undefined);
  switch (n.opType) {
    case 'MatMul':
    case 'FusedMatMul': {
      const a = sub(n.input[0]!);
      const b = sub(n.input[1]!);
      return a !== undefined && b !== undefined && a >= 2 && b >= 2 ? Math.max(a, b) : undefined;
    }
    case 'Transpose': {
      const perm = n.attribute.find((a) => a.name === 'perm');
      return perm ? perm.ints.length : sub(n.input[0]!);
    }
    case 'Reshape': {
      const shape = constantTensor(ix, n.input[1]!);
      return shape && shape.dims.length === 1 ? Number(shape.dims[0]) : undefined;
    }
    case 'Constant': {
      const value = n.attribute.find((a) => a.name === 'value');
      return value?.t ? value.t.dims.length : undefined;
    }
    case 'Concat':
    case 'Slice':
      return sub(n.input[0]!);
    case 'Unsqueeze': {
      const r = sub(n.input[0]!);
      const attr = n.attribute.find((a) => a.name === 'axes');
      const axes = attr ? attr.ints.length : n.input[1] ? constantTensor(ix, n.input[1])?.dims.reduce((a, b) => a * Number(b), 1) : undefined;
      return r !== undefined && axes !== undefined ? r + axes : undefined;
    }
    case 'Expand': {
      const r = sub(n.input[0]!);
      const shape = constantTensor(ix, n.input[1]!);
      return r !== undefined && shape && shape.dims.length === 1 ? Math.max(r, Number(shape.dims[0])) : undefined;
    }
    default:
      if (UNARY.has(n.opType)) return sub(n.input[0]!);
      if (ELEMENTWISE.has(n.opType)) {
        const ranks = n.input.filter((t) => t).map(sub);
        return ranks.every((r) => r !== undefined) ? Math.max(...(ranks as number[])) : undefined;
      }
      return undefined;
  }
}

function constantTensor(ix: GraphIndex, name: string) {
  const init = ix.graph.initializer.find((t) => t.name === name);
  if (init) return init;
  const p = ix.producer.get(name);
  if (p?.node.opType === 'Constant') return p.node.attribute.find((a) => a.name === 'value')?.t;
  return undefined;
}

/** Element type of a float activation, from declarations or by following its producers' first inputs. */
export function elemTypeOf(ix: GraphIndex, name: string, scope: GraphScope, depth = 0): TensorProto_DataType | undefined {
  const v = declaredAnywhere(scope, name);
  if (v?.type?.value.case === 'tensorType' && v.type.value.value.elemType) return v.type.value.value.elemType as TensorProto_DataType;
  const init = ix.graph.initializer.find((t) => t.name === name);
  if (init) return init.dataType as TensorProto_DataType;
  if (depth > 64) return undefined;
  const p = ix.producer.get(name);
  if (!p) return undefined;
  const n = p.node;
  if (n.opType === 'Cast') {
    const to = n.attribute.find((a) => a.name === 'to');
    return to ? (Number(to.i) as TensorProto_DataType) : undefined;
  }
  if (n.opType === 'Constant') return n.attribute.find((a) => a.name === 'value')?.t?.dataType as TensorProto_DataType | undefined;
  if (n.opType === 'Shape' || n.opType === 'Size') return TensorProto_DataType.INT64;
  // Where's first input is the condition: follow the values.
  const inputs = n.opType === 'Where' ? n.input.slice(1) : n.input;
  for (const t of inputs) {
    if (!t) continue;
    const e = elemTypeOf(ix, t, scope, depth + 1);
    if (e !== undefined && e !== TensorProto_DataType.INT64 && e !== TensorProto_DataType.BOOL) return e;
  }
  return undefined;
}
