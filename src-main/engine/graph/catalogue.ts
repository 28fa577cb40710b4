/**
 * The built-in tap points of a vision encoder or decoder graph: the residual stream entering
 * and leaving each transformer layer (HF-style `hidden_states.0..N`), each layer's attention
 * probabilities, and the decoder's final norm output.
 *
 * Heuristics (each step documented where it runs):
 *  1. Layers: nodes grouped by `layers.N` / `layer.N` / `blocks.N` / `h.N` name segments
 *     (layer-groups.ts). Only layers present in the file are reported — LLaVA exports drop
 *     the vision layers after `vision_feature_layer` as dead code.
 *  2. Layer-0 input (= embedding output, `hidden_states.0`): among the non-constant tensors
 *     that group 0 reads but does not make, the one that looks like a residual stream —
 *     read by a residual Add (an Add whose other operand is computed in the group and whose
 *     result does not feed a Softmax, which would make it an attention mask) and by a
 *     normalization. Masks and rotary tables are read by neither.
 *  3. Layer output: follow the residual chain from the layer input through the group's
 *     residual Adds (pre-norm blocks: x → x + attn → x + attn + mlp). Where the genai builder
 *     folded the last residual Add into the next layer's SkipSimplifiedLayerNormalization,
 *     the block output is that node's optional output 3 (`input_skip_bias_sum`). If no chain
 *     is found (e.g. post-norm blocks) fall back to scoring the tensors that leave the group
 *     towards later nodes (produced by an Add, read by a norm and by an Add).
 *     Layer i+1's input is layer i's output.
 *  4. Attention: GroupQueryAttention → `output_qk` (qk_output=2); ONNX Attention →
 *     `qk_matmul_output` (mode 3); otherwise the Softmax whose output is multiplied with V.
 *     Contrib Attention/MultiHeadAttention expose no probabilities: noted, not reported.
 *  5. Final norm: the activation input of the MatMul/Gemm producing `logits` (through
 *     Slice/Gather/Reshape used for `num_logits_to_keep`), if it is not the last layer output.
 * Anything that cannot be identified throws a CatalogueError naming the graph and what was
 * looked for; nothing is silently left out except the optional attention/final-norm taps.
 */
import type { GraphProto, ModelProto } from 'onnx-buf';
import { allGraphs } from './model-proto.ts';
import { type GraphIndex, indexGraph } from './graph-index.ts';
import { type LayerGroup, layerStacks } from './layer-groups.ts';
import { optionalOutputName, optionalOutputSpec } from './optional-outputs.ts';

export type AttentionKind = 'softmax' | 'onnx-attention' | 'gqa';

export interface AttentionTap {
  /** Tensor holding the probabilities [batch, heads, q, k]; for fused ops possibly a name addTaps will create. */
  tensor: string;
  kind: AttentionKind;
  /** The node that computes it (Softmax, Attention, GroupQueryAttention). */
  node: string;
}

export interface LayerTaps {
  index: number;
  /** Residual stream entering the layer. */
  input?: string;
  /** Residual stream leaving the layer (HF `hidden_states[index + 1]`). */
  output: string;
  attention?: AttentionTap;
}

export interface TapCatalogue {
  /** Graph name as stored in the file. */
  graph: string;
  /** Name prefix of the layer stack, e.g. `/language_model/layers`. */
  stack: string;
  layers: LayerTaps[];
  /** Residual stream entering the first layer (HF `hidden_states[0]`). */
  embeddingOutput: string;
  /** Output of the decoder's final norm (input to lm_head), when identifiable. */
  finalNorm?: string;
  /** HF-style names → tensor names, e.g. `hidden_states.0` → embeddingOutput. Only contiguous layers from 0. */
  hiddenStates: Record<string, string>;
  /** Things worth knowing that are not errors (other stacks, attention without probabilities…). */
  notes: string[];
}

export class CatalogueError extends Error {
  override name = 'CatalogueError';
}

export interface CatalogueOptions {
  /** Which layer stack to describe when the graph holds several (default: the one with most layers). */
  stack?: string;
  /** Used in error messages (e.g. the file name). */
  label?: string;
}

const NORM_OPS = new Set([
  'LayerNormalization', 'SimplifiedLayerNormalization', 'SkipLayerNormalization', 'SkipSimplifiedLayerNormalization',
  'RMSNormalization', 'GroupNormalization', 'Pow', 'ReduceMean', 'ReduceSumSquare', 'ReduceL2',
]);
const SKIP_NORM = new Set(['SkipLayerNormalization', 'SkipSimplifiedLayerNormalization']);
const PASS_THROUGH = new Set(['Slice', 'Gather', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Transpose', 'Flatten']);
const LM_HEAD_OPS = new Set(['MatMul', 'Gemm', 'MatMulNBits', 'MatMulInteger', 'FusedMatMul', 'MatMulBnb4']);

/** Catalogue of the model's main graph. Layers that exist only inside If/Loop subgraphs are reported as an error (see taps.ts). */
export function buildCatalogue(model: ModelProto, opts: CatalogueOptions = {}): TapCatalogue {
  if (!model.graph) throw new CatalogueError(`${opts.label ?? 'model'}: no graph`);
  const main = model.graph;
  if (layerStacks(main).size === 0) {
    for (const scope of allGraphs(model)) {
      if (scope.depth > 0 && layerStacks(scope.graph).size > 0) {
        throw new CatalogueError(
          `${describe(main, opts)}: the transformer layers live inside a subgraph (${scope.label}), as in Optimum "merged" decoders; ` +
            'taps on subgraph tensors are not supported — use the unmerged decoder file',
        );
      }
    }
  }
  return catalogueGraph(main, opts);
}

export function catalogueGraph(graph: GraphProto, opts: CatalogueOptions = {}): TapCatalogue {
  const where = describe(graph, opts);
  const stacks = layerStacks(graph);
  if (stacks.size === 0) {
    throw new CatalogueError(`${where}: found no transformer layers — looked for nodes whose names contain a path segment layers.N, layer.N, blocks.N, block.N or h.N (with a MatMul or attention op)`);
  }
  let stackName = opts.stack;
  if (stackName === undefined) stackName = [...stacks.entries()].sort((a, b) => b[1].length - a[1].length)[0]![0];
  const groups = stacks.get(stackName);
  if (!groups) throw new CatalogueError(`${where}: no layer stack "${stackName}"; stacks found: ${[...stacks.keys()].join(', ')}`);
  const notes: string[] = [];
  if (stacks.size > 1) notes.push(`other layer stacks in this graph: ${[...stacks.keys()].filter((s) => s !== stackName).join(', ')}`);

  const ix = indexGraph(graph);
  const member = new Map<number, number>(); // node position → layer index in this stack
  for (const g of groups) for (const at of g.nodes) member.set(at, g.index);

  const layers: LayerTaps[] = [];
  let residual: string | undefined;
  let prevIndex = -Infinity;
  for (const g of groups) {
    const input = prevIndex === g.index - 1 && residual !== undefined ? residual : layerInput(ix, g, member, where);
    const output = layerOutput(ix, g, member, input, where);
    const attention = layerAttention(ix, g, notes);
    layers.push({ index: g.index, input, output, ...(attention ? { attention } : {}) });
    residual = output;
    prevIndex = g.index;
  }

  const first = layers[0]!;
  if (first.input === undefined) throw new CatalogueError(`${where}: could not identify the input of layer ${first.index}`);
  const embeddingOutput = first.input;
  const finalNorm = findFinalNorm(ix, layers[layers.length - 1]!.output, notes);

  const hiddenStates: Record<string, string> = {};
  if (first.index === 0) {
    hiddenStates['hidden_states.0'] = embeddingOutput;
    for (const [k, l] of layers.entries()) {
      if (l.index !== k) {
        notes.push(`layer indices are not contiguous after ${k - 1}; hidden_states stop there`);
        break;
      }
      hiddenStates[`hidden_states.${k + 1}`] = l.output;
    }
  } else {
    notes.push(`first layer present is ${first.index}, not 0; no hidden_states names assigned`);
  }

  return { graph: graph.name, stack: stackName, layers, embeddingOutput, ...(finalNorm ? { finalNorm } : {}), hiddenStates, notes };
}

function describe(graph: GraphProto, opts: CatalogueOptions): string {
  return `graph "${graph.name}"${opts.label ? ` (${opts.label})` : ''}`;
}

/** Is this use a residual Add: an Add (or skip-norm) whose other operand is computed in `layer`, not feeding a Softmax? */
function isResidualUse(ix: GraphIndex, name: string, use: { node: { opType: string; input: string[]; output: string[] }; slot: number }, inLayer: (t: string) => boolean): boolean {
  const { node, slot } = use;
  const add = node.opType === 'Add' || node.opType === 'Sum';
  const skip = SKIP_NORM.has(node.opType) && (slot === 0 || slot === 1);
  if (!add && !skip) return false;
  const others = (skip ? node.input.slice(0, 2) : node.input).filter((t, i) => t && (t !== name || i !== slot));
  if (!others.some((t) => !ix.constants.has(t) && inLayer(t))) return false;
  if (add) {
    const out = node.output[0]!;
    // An Add feeding Softmax is the attention-mask add, not the residual.
    if ((ix.consumers.get(out) ?? []).some((u) => u.node.opType === 'Softmax')) return false;
  }
  return true;
}

function isNormUse(ix: GraphIndex, node: { opType: string; output: string[] }): boolean {
  if (NORM_OPS.has(node.opType)) return true;
  // fp16 exports cast to float32 before the norm arithmetic.
  if (node.opType === 'Cast') return (ix.consumers.get(node.output[0] ?? '') ?? []).some((u) => NORM_OPS.has(u.node.opType));
  return false;
}

function producedIn(ix: GraphIndex, member: Map<number, number>, layer: number): (t: string) => boolean {
  return (t) => {
    const p = ix.producer.get(t);
    return p !== undefined && member.get(p.at) === layer;
  };
}

/** Step 2: the residual stream entering a layer, by scoring the tensors it reads from outside. */
function layerInput(ix: GraphIndex, g: LayerGroup, member: Map<number, number>, where: string): string {
  const inLayer = producedIn(ix, member, g.index);
  const scored: { name: string; score: number; order: number }[] = [];
  const seen = new Set<string>();
  for (const at of g.nodes) {
    for (const name of ix.graph.node[at]!.input) {
      if (!name || seen.has(name) || ix.constants.has(name) || inLayer(name)) continue;
      seen.add(name);
      const uses = (ix.consumers.get(name) ?? []).filter((u) => member.get(u.at) === g.index);
      let score = 0;
      if (uses.some((u) => isResidualUse(ix, name, u, inLayer))) score += 3;
      if (uses.some((u) => isNormUse(ix, u.node))) score += 2;
      const p = ix.producer.get(name);
      scored.push({ name, score, order: p ? p.at : -1 });
    }
  }
  const best = Math.max(0, ...scored.map((s) => s.score));
  const top = scored.filter((s) => s.score === best);
  if (best < 3 || top.length === 0) {
    throw new CatalogueError(
      `${where}: could not identify the residual stream entering layer ${g.index} — looked for a tensor read by both a residual Add and a normalization; ` +
        `candidates were: ${scored.map((s) => `${s.name} (score ${s.score})`).join(', ') || 'none'}`,
    );
  }
  // Several equally good candidates: the latest-produced one is closest to the layer.
  return top.sort((a, b) => b.order - a.order)[0]!.name;
}

/** Step 3: the residual stream leaving a layer. */
function layerOutput(ix: GraphIndex, g: LayerGroup, member: Map<number, number>, input: string, where: string): string {
  const inLayer = producedIn(ix, member, g.index);
  const lastAt = g.nodes[g.nodes.length - 1]!;
  const readLater = (t: string) => ix.graphOutputs.has(t) || (ix.consumers.get(t) ?? []).some((u) => member.get(u.at) !== g.index && u.at > lastAt);

  // 3a: walk the residual chain.
  let cur = input;
  for (let steps = 0; steps < 64; steps++) {
    const next = (ix.consumers.get(cur) ?? []).filter((u) => member.get(u.at) === g.index && isResidualUse(ix, cur, u, inLayer));
    if (next.length === 0) break;
    const u = next[0]!;
    const spec = SKIP_NORM.has(u.node.opType) ? optionalOutputSpec(u.node) : undefined;
    cur = spec ? optionalOutputName(u.node, spec) : u.node.output[0]!;
    if (spec && !u.node.output[spec.slot]) break; // synthetic name: nothing reads it yet
  }
  if (cur !== input) {
    // 3b: the genai builder's next-layer SkipSimplifiedLayerNormalization completes this block.
    const tail = (ix.consumers.get(cur) ?? []).find((u) => member.get(u.at) !== g.index && u.at > lastAt && SKIP_NORM.has(u.node.opType) && (u.slot === 0 || u.slot === 1));
    if (tail) {
      const other = u2other(tail.node.input, tail.slot);
      if (other && inLayer(other)) return optionalOutputName(tail.node, optionalOutputSpec(tail.node)!);
    }
    if (readLater(cur)) return cur;
  }

  // 3c: fallback scoring of tensors that leave the group towards later nodes.
  const scored: { name: string; score: number; at: number }[] = [];
  for (const at of g.nodes) {
    const node = ix.graph.node[at]!;
    for (const name of node.output) {
      if (!name || ix.constants.has(name)) continue;
      const later = (ix.consumers.get(name) ?? []).filter((u) => member.get(u.at) !== g.index && u.at > lastAt);
      if (later.length === 0) continue;
      let score = 0;
      if (node.opType === 'Add' || node.opType === 'Sum' || SKIP_NORM.has(node.opType)) score += 3;
      if (later.some((u) => isNormUse(ix, u.node))) score += 2;
      if (later.some((u) => u.node.opType === 'Add' || SKIP_NORM.has(u.node.opType))) score += 2;
      if (node.opType.endsWith('LayerNormalization') && !SKIP_NORM.has(node.opType)) score += 2; // post-norm blocks end in a norm
      scored.push({ name, score, at });
    }
  }
  const best = Math.max(0, ...scored.map((s) => s.score));
  const top = scored.filter((s) => s.score === best);
  if (top.length === 0 || (best === 0 && top.length > 1)) {
    throw new CatalogueError(
      `${where}: could not identify the residual stream leaving layer ${g.index} — looked for a chain of residual Adds from ${input}, ` +
        `then for a tensor made in the layer and read by later nodes; candidates were: ${scored.map((s) => `${s.name} (score ${s.score})`).join(', ') || 'none'}`,
    );
  }
  return top.sort((a, b) => b.at - a.at)[0]!.name;
}

function u2other(inputs: string[], slot: number): string | undefined {
  return slot === 0 ? inputs[1] : inputs[0];
}

/** Step 4: the attention probabilities of a layer. */
function layerAttention(ix: GraphIndex, g: LayerGroup, notes: string[]): AttentionTap | undefined {
  const nodes = g.nodes.map((at) => ix.graph.node[at]!);
  for (const node of nodes) {
    const spec = optionalOutputSpec(node);
    if (spec?.kind === 'gqa-probs') return { tensor: optionalOutputName(node, spec), kind: 'gqa', node: node.name };
    if (spec?.kind === 'onnx-attention-probs') return { tensor: optionalOutputName(node, spec), kind: 'onnx-attention', node: node.name };
  }
  // Softmax whose probabilities are multiplied with V (excludes e.g. MoE router softmaxes).
  const softmaxes = nodes.filter((n) => n.opType === 'Softmax' && (ix.consumers.get(n.output[0]!) ?? []).some((u) => u.node.opType === 'MatMul' && u.slot === 0));
  if (softmaxes.length > 1) notes.push(`layer ${g.index}: ${softmaxes.length} attention-like Softmax nodes; reporting the first (${softmaxes[0]!.name})`);
  if (softmaxes.length) return { tensor: softmaxes[0]!.output[0]!, kind: 'softmax', node: softmaxes[0]!.name };
  const fused = nodes.find((n) => n.opType === 'Attention' || n.opType === 'MultiHeadAttention' || n.opType === 'PackedAttention');
  notes.push(fused ? `layer ${g.index}: ${fused.domain || 'ai.onnx'}::${fused.opType} exposes no attention probabilities` : `layer ${g.index}: no attention found`);
  return undefined;
}

/** Step 5: input of lm_head, when it is not simply the last layer's output. */
function findFinalNorm(ix: GraphIndex, lastOutput: string, notes: string[]): string | undefined {
  const logits = ix.graph.output.find((o) => o.name === 'logits')?.name;
  if (!logits) return undefined;
  let head = ix.producer.get(logits);
  while (head && PASS_THROUGH.has(head.node.opType)) head = ix.producer.get(head.node.input[0]!);
  if (!head || !LM_HEAD_OPS.has(head.node.opType)) {
    notes.push('logits are not produced by a MatMul/Gemm; final norm not identified');
    return undefined;
  }
  let t = head.node.input.find((n) => n && !ix.constants.has(n));
  for (let p = t ? ix.producer.get(t) : undefined; t && p && PASS_THROUGH.has(p.node.opType); p = t ? ix.producer.get(t) : undefined) t = p.node.input[0];
  if (!t || t === lastOutput) {
    notes.push('lm_head reads the last layer output directly; no final norm');
    return undefined;
  }
  return t;
}
