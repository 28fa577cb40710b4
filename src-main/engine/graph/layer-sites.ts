/**
 * The one site finder behind taps (catalogue.ts) and ablation (attention-sites.ts): each
 * transformer layer's residual stream in and out and its attention op, found from the graph's
 * *structure*, never from node names or one exporter's op order. Names only label a stack
 * (`/language_model/layers`) when they happen to carry a module path.
 *
 * 1. Attention ops: a Softmax whose probabilities reach a MatMul/Einsum as its first operand
 *    (through Cast/Identity/Dropout/Reshape: CLIP exports `Softmax → Cast → MatMul`), ONNX
 *    `Attention` (opset 23), and com.microsoft Attention / MultiHeadAttention /
 *    GroupQueryAttention (the ORT transformer optimizer's and the genai builder's fused ops);
 *    other fused attention ops are recognised so they can be refused by name.
 * 2. Residual sub-blocks: from a stream tensor t, the next residual op is an Add/Sum (or
 *    Skip[Simplified]LayerNormalization) reading t — directly or through Cast/Identity, as the
 *    RMSNorm upcast does — whose other operand is computed *from* t. Its result (a skip-norm's
 *    optional output 3) is the next stream tensor. Post-norm blocks (Add → LayerNorm) continue
 *    at the norm's output.
 * 3. Layers: a sub-block whose branch holds an attention op starts a layer; the sub-blocks
 *    after it (the MLP) belong to it. A chain starts at the stream entering the first
 *    attention op's sub-block, found by walking forward from that op to the residual op whose
 *    other operand is *not* computed from it.
 * Several chains in one graph (two towers) are separate stacks, longest first. Anything
 * inconsistent is a SiteError naming the node and what was expected: a Softmax in a residual
 * branch that does not feed a V product, a branch with two attention ops, a live attention op
 * outside every residual block before the end of the main stack.
 */
import type { NodeProto } from 'onnx-buf';
import type { GraphIndex } from './graph-index.ts';
import { layerOf } from './layer-groups.ts';
import { optionalOutputName, optionalOutputSpec } from './optional-outputs.ts';

export type AttentionOpKind = 'softmax' | 'onnx-attention' | 'ms-attention' | 'ms-mha' | 'gqa' | 'fused-without-bias';

export interface AttentionOp {
  node: NodeProto;
  /** Position in `graph.node`. */
  at: number;
  kind: AttentionOpKind;
  /** Fused ops with an additive bias input: its slot. */
  biasSlot?: number;
}

export interface LayerSite {
  /** Position in the stack, from 0. */
  index: number;
  /** Residual stream entering the layer. */
  input: string;
  /** Residual stream leaving the layer; may be a skip-norm's optional output not yet switched on. */
  output: string;
  attention: AttentionOp;
}

export interface LayerStack {
  /** The layers' module path when node names carry one (`/vision_tower/vision_model/encoder/layers`), else `chain@<first attention node>`. */
  name: string;
  layers: LayerSite[];
}

export interface GraphSites {
  /** Longest first. */
  stacks: LayerStack[];
  /** Every attention op of the graph, in node order (also those in no stack). */
  attentionOps: AttentionOp[];
  notes: string[];
}

export class SiteError extends Error {
  override name = 'SiteError';
}

const MS = 'com.microsoft';
const FUSED_WITH_BIAS: Record<string, { kind: AttentionOpKind; slot: number }> = {
  ':Attention': { kind: 'onnx-attention', slot: 3 },
  [`${MS}:Attention`]: { kind: 'ms-attention', slot: 5 },
  [`${MS}:MultiHeadAttention`]: { kind: 'ms-mha', slot: 5 },
  [`${MS}:GroupQueryAttention`]: { kind: 'gqa', slot: 10 },
};
/** Fused attention ops with no additive bias input: found, so they can be refused by name. */
const FUSED_WITHOUT_BIAS = new Set([
  'PackedAttention', 'PackedMultiHeadAttention', 'SparseAttention', 'PagedAttention', 'LongformerAttention', 'DecoderAttention',
  'DecoderMaskedMultiHeadAttention', 'DecoderMaskedSelfAttention', 'QAttention', 'QOrderedAttention', 'QOrderedLongformerAttention',
]);
/** Ops that move or retype the probabilities on their way to the V product without changing them. */
const PROBS_PASS_THROUGH = new Set(['Cast', 'Identity', 'Dropout', 'Reshape', 'Squeeze', 'Unsqueeze']);
/** Ops that retype or rename the residual stream without changing it (the RMSNorm upcast). */
const STREAM_PASS_THROUGH = new Set(['Cast', 'Identity']);
const SKIP_NORM = new Set(['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);
const POST_NORM = new Set(['LayerNormalization', 'SimplifiedLayerNormalization', 'RMSNormalization']);

const domainOf = (n: NodeProto) => (n.domain === 'ai.onnx' ? '' : n.domain);
export const describeNode = (n: NodeProto) => `${domainOf(n) ? `${domainOf(n)}::` : ''}${n.opType} "${n.name || n.output[0] || '?'}"`;

/** The consumers of a Softmax's probabilities, looking through PROBS_PASS_THROUGH. */
export function probsConsumers(ix: GraphIndex, name: string, depth = 0): { node: NodeProto; slot: number }[] {
  const out: { node: NodeProto; slot: number }[] = [];
  for (const u of ix.consumers.get(name) ?? []) {
    if (PROBS_PASS_THROUGH.has(u.node.opType) && u.slot === 0 && depth < 6) out.push(...probsConsumers(ix, u.node.output[0]!, depth + 1));
    else out.push({ node: u.node, slot: u.slot });
  }
  return out;
}

const feedsValueProduct = (uses: { node: NodeProto; slot: number }[]) => uses.some((u) => (u.node.opType === 'MatMul' && u.slot === 0) || u.node.opType === 'Einsum');

/** Step 1: what kind of attention op a node is, if any. Softmaxes that do not feed a V product are not attention (MoE routers). */
export function attentionKind(ix: GraphIndex, node: NodeProto): Omit<AttentionOp, 'node' | 'at'> | undefined {
  const fused = FUSED_WITH_BIAS[`${domainOf(node)}:${node.opType}`];
  if (fused) return { kind: fused.kind, biasSlot: fused.slot };
  if (FUSED_WITHOUT_BIAS.has(node.opType)) return { kind: 'fused-without-bias' };
  if (node.opType === 'Softmax' && feedsValueProduct(probsConsumers(ix, node.output[0]!))) return { kind: 'softmax' };
  return undefined;
}

interface SubBlock {
  input: string;
  output: string;
  /** Attention ops inside the residual branch. */
  attention: AttentionOp[];
  /** Softmax nodes in the branch that are not attention (reported if they make a layer ambiguous). */
  strayed: NodeProto[];
  postNorm: boolean;
}

export function findLayerSites(ix: GraphIndex, where: string): GraphSites {
  const g = ix.graph;
  const attentionOps: AttentionOp[] = [];
  g.node.forEach((node, at) => {
    const k = attentionKind(ix, node);
    if (k) attentionOps.push({ node, at, ...k });
  });
  const opAt = new Map(attentionOps.map((a) => [a.at, a]));
  const notes: string[] = [];
  const pos = (t: string) => ix.producer.get(t)?.at ?? -1;

  /** t and every tensor that is t through Cast/Identity only. */
  const aliases = (t: string): Set<string> => {
    const out = new Set([t]);
    const stack = [t];
    while (stack.length) {
      for (const u of ix.consumers.get(stack.pop()!) ?? []) {
        if (STREAM_PASS_THROUGH.has(u.node.opType) && u.slot === 0 && !out.has(u.node.output[0]!)) {
          out.add(u.node.output[0]!);
          stack.push(u.node.output[0]!);
        }
      }
    }
    return out;
  };

  /**
   * Nodes (positions) on which `o` depends that come after `floor` (the node making `from`, or
   * -1 for a graph input), and whether `o` is computed from `from`. Reading another output of
   * the floor node counts: a skip-norm's normalised output 0 is computed from its sum, output 3.
   */
  const cone = (o: string, from: Set<string>, floor: number) => {
    const nodes: number[] = [];
    let reaches = from.has(o);
    const seen = new Set<number>();
    const stack = [o];
    while (stack.length) {
      const p = ix.producer.get(stack.pop()!);
      if (p && p.at === floor && floor >= 0) reaches = true;
      if (!p || p.at <= floor || seen.has(p.at)) continue;
      seen.add(p.at);
      nodes.push(p.at);
      for (const t of p.node.input) {
        if (!t || ix.constants.has(t)) continue;
        if (from.has(t)) reaches = true;
        else stack.push(t);
      }
    }
    return { nodes, reaches };
  };

  /** The residual op's result: an Add's output, a skip-norm's output 3 (possibly synthetic). */
  const sumOf = (n: NodeProto) => (SKIP_NORM.has(n.opType) ? optionalOutputName(n, optionalOutputSpec(n)!) : n.output[0]!);

  /** Residual operands of an Add/Sum/skip-norm: the two summed inputs. */
  const summands = (n: NodeProto): string[] | undefined => {
    if (n.opType === 'Add') return n.input.slice(0, 2);
    if (n.opType === 'Sum' && n.input.length === 2) return n.input;
    if (SKIP_NORM.has(n.opType)) return n.input.slice(0, 2);
    return undefined;
  };

  /**
   * The residual op reading stream t (directly or through Cast/Identity): the earliest Add/Sum or
   * skip-norm whose other operand is computed from t — not a constant, not t itself, not a mask add.
   */
  const residualOf = (t: string, from: Set<string>): { at: number; node: NodeProto; other: string } | undefined => {
    let best: { at: number; node: NodeProto; other: string } | undefined;
    for (const a of from) {
      for (const u of ix.consumers.get(a) ?? []) {
        const pair = summands(u.node);
        if (!pair || (u.slot !== 0 && u.slot !== 1)) continue;
        const other = pair[1 - u.slot];
        if (!other || ix.constants.has(other) || from.has(other)) continue;
        if (best && best.at <= u.at) continue;
        if (u.node.opType === 'Add' && (ix.consumers.get(u.node.output[0]!) ?? []).some((c) => c.node.opType === 'Softmax')) continue; // a mask add
        if (!cone(other, from, pos(t)).reaches) continue;
        best = { at: u.at, node: u.node, other };
      }
    }
    return best;
  };

  /** Step 2: the residual sub-block starting at stream tensor t, if any. */
  const nextBlock = (t: string): SubBlock | undefined => {
    const from = aliases(t);
    const floor = pos(t);
    const best = residualOf(t, from);
    if (!best) return undefined;
    const branch = cone(best.other, from, floor).nodes;
    const attention = branch.filter((at) => opAt.has(at)).sort((a, b) => a - b).map((at) => opAt.get(at)!);
    const strayed = branch.filter((at) => g.node[at]!.opType === 'Softmax' && !opAt.has(at)).map((at) => g.node[at]!);
    let output = sumOf(best.node);
    let postNorm = false;
    // Post-norm blocks: Add → LayerNorm, and the stream goes on from the norm.
    if (!hasResidualUse(output)) {
      const norms = (ix.consumers.get(output) ?? []).filter((u) => POST_NORM.has(u.node.opType) && u.slot === 0);
      if (norms.length === 1 && hasResidualUse(norms[0]!.node.output[0]!)) {
        output = norms[0]!.node.output[0]!;
        postNorm = true;
      }
    }
    return { input: t, output, attention, strayed, postNorm };
  };

  const residualUseMemo = new Map<string, boolean>();
  function hasResidualUse(t: string): boolean {
    let r = residualUseMemo.get(t);
    if (r === undefined) residualUseMemo.set(t, (r = residualOf(t, aliases(t)) !== undefined));
    return r;
  }

  /** The tensor that `t` is a Cast/Identity of (the residual op may read the stream through the norm's upcast). */
  const streamRoot = (t: string): string => {
    for (let p = ix.producer.get(t); p && STREAM_PASS_THROUGH.has(p.node.opType) && p.node.input[0]; p = ix.producer.get(t)) t = p.node.input[0];
    return t;
  };

  /** Step 3 (chain start): the stream entering the sub-block of attention op `a`. */
  const streamInto = (a: AttentionOp): string | undefined => {
    const fromA = new Set(a.node.output.filter((o) => o));
    const queue = [...fromA];
    const seen = new Set<number>();
    while (queue.length) {
      const t = queue.shift()!;
      for (const u of ix.consumers.get(t) ?? []) {
        if (seen.has(u.at)) continue;
        seen.add(u.at);
        if (seen.size > 400) return undefined;
        const pair = summands(u.node);
        if (pair && (u.slot === 0 || u.slot === 1)) {
          const other = pair[1 - u.slot];
          if (other && !ix.constants.has(other) && !cone(other, fromA, a.at).reaches) return streamRoot(other);
        }
        if (opAt.has(u.at)) continue; // the next attention op: gone too far
        for (const o of u.node.output) if (o) queue.push(o);
      }
    }
    return undefined;
  };

  const inChain = new Set<number>();
  const stacks: LayerStack[] = [];
  for (const start of attentionOps) {
    if (inChain.has(start.at)) continue;
    const s0 = streamInto(start);
    if (s0 === undefined) continue;
    const layers: LayerSite[] = [];
    let postNorm = false;
    let t = s0;
    for (let guard = 0; guard < 100000; guard++) {
      const b = nextBlock(t);
      if (!b) break;
      postNorm ||= b.postNorm;
      if (b.attention.length > 1) {
        throw new SiteError(`${where}: the residual block from "${b.input}" to "${b.output}" holds ${b.attention.length} attention ops (${b.attention.map((a) => describeNode(a.node)).join(', ')}); expected one per layer`);
      }
      if (b.attention.length === 1) {
        const a = b.attention[0]!;
        if (inChain.has(a.at)) break;
        inChain.add(a.at);
        layers.push({ index: layers.length, input: b.input, output: b.output, attention: a });
      } else {
        if (b.strayed.length) {
          const n = b.strayed[0]!;
          const feeds = probsConsumers(ix, n.output[0]!);
          throw new SiteError(
            `${where}: layer ${layers.length}: the residual block from "${b.input}" to "${b.output}" holds ${describeNode(n)}, which feeds ` +
              `${feeds.map((u) => `${describeNode(u.node)} (input ${u.slot})`).join(', ') || 'nothing'}, not a MatMul with V — cannot tell whether it is attention`,
          );
        }
        if (layers.length === 0) break;
        layers[layers.length - 1]!.output = b.output; // the MLP half of the layer
      }
      t = b.output;
    }
    // Post-norm stacks: the last layer's output is the norm after its last residual Add, as in the others.
    const last = layers[layers.length - 1];
    if (postNorm && last) {
      const norms = (ix.consumers.get(last.output) ?? []).filter((u) => POST_NORM.has(u.node.opType) && u.slot === 0);
      if (norms.length === 1) last.output = norms[0]!.node.output[0]!;
    }
    if (layers.length) stacks.push({ name: stackName(layers), layers });
  }
  stacks.sort((a, b) => b.layers.length - a.layers.length);

  // Attention ops in no layer: an error where the main stack would silently lose a layer, a note elsewhere.
  const main = stacks[0];
  const live = liveNodes(ix);
  const lastAt = main ? Math.max(...main.layers.map((l) => l.attention.at)) : -1;
  for (const a of attentionOps) {
    if (inChain.has(a.at)) continue;
    if (!live.has(a.at)) {
      notes.push(`${describeNode(a.node)} is dead code (nothing the graph outputs depends on it); ignored`);
    } else if (main && a.at < lastAt) {
      throw new SiteError(
        `${where}: ${describeNode(a.node)} sits among the layers of ${main.name} but in no residual block — looked for an Add (or SkipLayerNormalization) ` +
          'that sums the stream entering its layer with a branch computed from it',
      );
    } else {
      notes.push(`${describeNode(a.node)} is outside every residual layer stack (e.g. a pooling head); not a layer`);
    }
  }
  if (stacks.length > 1) notes.push(`other layer stacks in this graph: ${stacks.slice(1).map((s) => `${s.name} (${s.layers.length} layers)`).join(', ')}`);
  return { stacks, attentionOps, notes };
}

/** Node positions that some graph output depends on. */
function liveNodes(ix: GraphIndex): Set<number> {
  const live = new Set<number>();
  const stack = [...ix.graphOutputs];
  while (stack.length) {
    const p = ix.producer.get(stack.pop()!);
    if (!p || live.has(p.at)) continue;
    live.add(p.at);
    for (const t of p.node.input) if (t) stack.push(t);
  }
  return live;
}

/** The module path the layers' attention nodes share, when their names carry one. */
function stackName(layers: LayerSite[]): string {
  const counts = new Map<string, number>();
  for (const l of layers) {
    const s = layerOf(l.attention.node)?.stack;
    if (s) counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const best = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  if (best && best[1] === layers.length) return best[0];
  const first = layers[0]!.attention.node;
  return `chain@${first.name || first.output[0]}`;
}
