/**
 * Where a graph computes attention scores, per transformer layer, so an additive bias can be
 * wired in (ablation.ts). Layers come from the same structural site finder as the taps
 * (layer-sites.ts), in the main graph and in every If/Loop subgraph (Optimum merged decoders
 * keep their layers inside If branches; each branch gets its own site).
 *
 * Recognised sites:
 *   softmax         a Softmax over the last axis whose probabilities are multiplied with V
 *                   (through Cast/Identity/Dropout/Reshape).
 *   onnx-attention  ai.onnx Attention (opset 23), input 3 `attn_mask`.
 *   ms-attention    com.microsoft Attention, input 5 `attention_bias`.
 *   ms-mha          com.microsoft MultiHeadAttention, input 5 `attention_bias` (`relative_position_bias` in older ORT).
 *   gqa             com.microsoft GroupQueryAttention, input 10 `attention_bias`.
 * Anything else is refused by name (AttentionSiteError), never skipped: fused attention ops
 * without an additive bias input (PackedAttention, SparseAttention, DecoderMaskedMultiHeadAttention …),
 * a Softmax over another axis, a residual block whose Softmax does not feed a V product, a
 * block with several attention ops, or a graph with no layers.
 */
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';
import { TensorProto_DataType } from 'onnx-buf';
import { type GraphIndex, indexGraph } from './graph-index.ts';
import { type AttentionOp, type LayerStack, SiteError, describeNode, findLayerSites } from './layer-sites.ts';
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

export class AttentionSiteError extends SiteError {
  override name = 'AttentionSiteError';
}

const where = (label: string | undefined, scope: GraphScope) => `${label ? `${label}: ` : ''}graph "${scope.graph.name}" (${scope.label})`;

/** Every attention site of the model's main layer stack (or `opts.stack`), main graph and subgraphs. */
export function findAttentionSites(model: ModelProto, opts: { stack?: string; label?: string } = {}): AttentionSites {
  const notes: string[] = [];
  const found: { scope: GraphScope; ix: GraphIndex; stack: LayerStack }[] = [];
  for (const scope of allGraphs(model)) {
    const ix = indexGraph(scope.graph);
    let sites;
    try {
      sites = findLayerSites(ix, where(opts.label, scope));
    } catch (e) {
      throw e instanceof SiteError ? new AttentionSiteError(e.message) : e;
    }
    const stack = opts.stack === undefined ? sites.stacks[0] : sites.stacks.find((s) => s.name === opts.stack);
    if (stack) found.push({ scope, ix, stack });
    notes.push(...sites.notes.map((n) => `${scope.label}: ${n}`));
  }
  if (found.length === 0) {
    throw new AttentionSiteError(
      opts.stack === undefined
        ? `${opts.label ?? 'model'}: found no transformer layers (attention inside a residual block) in any graph`
        : `${opts.label ?? 'model'}: no layer stack "${opts.stack}"`,
    );
  }
  // The longest stack over all scopes is the model's (an If's branches each hold a copy).
  const longest = Math.max(...found.map((f) => f.stack.layers.length));
  const opset = opsetVersion(model, '') ?? 1;
  const sites: AttentionSite[] = [];
  for (const { scope, ix, stack } of found) {
    if (stack.layers.length < longest) {
      notes.push(`${scope.label}: skipped ${stack.name} (${stack.layers.length} layers; the model's stack has ${longest})`);
      continue;
    }
    for (const layer of stack.layers) sites.push(siteOf(ix, scope, layer.index, layer.attention, opset, opts.label));
  }
  const layers = [...new Set(sites.map((s) => s.layer))].sort((a, b) => a - b);
  return { stack: found.find((f) => f.stack.layers.length === longest)!.stack.name, layers, sites, notes };
}

function siteOf(ix: GraphIndex, scope: GraphScope, layer: number, a: AttentionOp, opset: number, label: string | undefined): AttentionSite {
  const node = a.node;
  const elemType = () => elemTypeOf(ix, node.input[0]!, scope) ?? unknownType(label, scope, node.input[0]!);
  if (a.kind === 'fused-without-bias') throw new AttentionSiteError(`${where(label, scope)}: layer ${layer}: ${describeNode(node)} has no additive attention-bias input`);
  if (a.kind !== 'softmax') return { layer, kind: a.kind, node, scope, biasSlot: a.biasSlot!, elemType: elemType() };
  const rank = rankOf(ix, node.input[0]!, scope, new Map());
  const axisAttr = node.attribute.find((x) => x.name === 'axis');
  const axis = axisAttr ? Number(axisAttr.i) : opset >= 13 ? -1 : 1;
  if (axis !== -1 && !(rank !== undefined && axis === rank - 1)) {
    throw new AttentionSiteError(`${where(label, scope)}: layer ${layer}: Softmax "${node.name}" normalises over axis ${axis}${rank !== undefined ? ` of a rank-${rank} tensor` : ''}, not over the keys (last axis)`);
  }
  return { layer, kind: 'softmax', node, scope, ...(rank !== undefined && { rank }), elemType: elemType() };
}

function unknownType(label: string | undefined, scope: GraphScope, tensor: string): never {
  throw new AttentionSiteError(`${where(label, scope)}: could not work out the element type of "${tensor}" (needed for the bias input)`);
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
