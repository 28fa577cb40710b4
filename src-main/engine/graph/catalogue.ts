/**
 * The built-in tap points of a vision encoder or decoder graph: the residual stream entering
 * and leaving each transformer layer (HF-style `hidden_states.0..N`), each layer's attention
 * probabilities, and the decoder's final norm output.
 *
 * Layers, their residual streams and their attention ops come from the one structural site
 * finder that ablation uses too (layer-sites.ts). Per layer, the attention probabilities are:
 *   Softmax                 its output (whatever Cast/Reshape follows it on the way to V);
 *   GroupQueryAttention     `output_qk` (qk_output=2), switched on by addTaps;
 *   ONNX Attention          `qk_matmul_output` (mode 3), switched on by addTaps;
 *   contrib Attention/MHA   no output for them: a shadow branch recomputes them from the op's
 *                           inputs (attention-probs.ts), added by addTaps; where it cannot
 *                           (masks, past, causal), noted, and a run that asks for attention
 *                           fails naming the node (graph-taps.ts).
 * Final norm: the activation input of the MatMul/Gemm producing `logits` (through
 * Slice/Gather/Reshape used for `num_logits_to_keep`), if it is not the last layer output.
 * Anything that cannot be identified throws a CatalogueError naming the graph and what was
 * looked for.
 */
import type { GraphProto, ModelProto } from 'onnx-buf';
import { allGraphs } from './model-proto.ts';
import { type GraphIndex, definedNames, indexGraph } from './graph-index.ts';
import { type AttentionOp, type GraphSites, SiteError, describeNode, findLayerSites } from './layer-sites.ts';
import { optionalOutputName, optionalOutputSpec } from './optional-outputs.ts';
import { hasShadowProbs, shadowProbsName, shadowProbsRefusal } from './attention-probs.ts';
import { branchTapName } from './taps.ts';

export type AttentionKind = 'softmax' | 'onnx-attention' | 'gqa' | 'shadow';

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

export class CatalogueError extends SiteError {
  override name = 'CatalogueError';
}

export interface CatalogueOptions {
  /** Which layer stack to describe when the graph holds several (default: the one with most layers). */
  stack?: string;
  /** Used in error messages (e.g. the file name). */
  label?: string;
}

const PASS_THROUGH = new Set(['Slice', 'Gather', 'Reshape', 'Squeeze', 'Unsqueeze', 'Identity', 'Cast', 'Transpose', 'Flatten']);
const LM_HEAD_OPS = new Set(['MatMul', 'Gemm', 'MatMulNBits', 'MatMulInteger', 'FusedMatMul', 'MatMulBnb4', 'DynamicQuantizeMatMul']);
/** Quantized lm_heads read the activation through these (output 0 = quantized input 0). */
const QUANTIZE_OPS = new Set(['DynamicQuantizeLinear', 'QuantizeLinear']);

/**
 * Catalogue of the model's main graph. When the layers live in the two branches of an If node
 * (Optimum "merged" decoders: with past / without past), each branch is catalogued and every
 * tap names the pair (taps.ts `branchTapName`): the If node outputs whichever branch ran.
 */
export function buildCatalogue(model: ModelProto, opts: CatalogueOptions = {}): TapCatalogue {
  if (!model.graph) throw new CatalogueError(`${opts.label ?? 'model'}: no graph`);
  const main = model.graph;
  if (findLayerSites(indexGraph(main), describe(main, opts)).stacks.length === 0) {
    const merged = mergedBranches(main, opts);
    if (merged) return merged;
  }
  return catalogueGraph(main, opts, () => {
    for (const scope of allGraphs(model)) {
      if (scope.depth > 0 && findLayerSites(indexGraph(scope.graph), scope.label).stacks.length > 0) return scope.label;
    }
    return undefined;
  });
}

/** An If node of the main graph whose two branches hold layer stacks of the same depth: one catalogue over both. */
function mergedBranches(main: GraphProto, opts: CatalogueOptions): TapCatalogue | undefined {
  for (const node of main.node) {
    if (node.opType !== 'If') continue;
    const then = node.attribute.find((a) => a.name === 'then_branch')?.g;
    const other = node.attribute.find((a) => a.name === 'else_branch')?.g;
    if (!then || !other) continue;
    const label = (b: string) => ({ ...opts, label: `${opts.label ?? 'model'} > If "${node.name}" . ${b}` });
    let a: TapCatalogue;
    let b: TapCatalogue;
    try {
      a = catalogueGraph(then, label('then_branch'));
      b = catalogueGraph(other, label('else_branch'));
    } catch {
      continue;
    }
    const ifName = node.name || node.output[0]!;
    if (a.layers.length !== b.layers.length) {
      throw new CatalogueError(`${describe(main, opts)}: the branches of If "${ifName}" hold ${a.layers.length} and ${b.layers.length} layers; a merged decoder's branches must be the same model`);
    }
    // A tensor both branches read from the main graph (the embeddings entering layer 0) is tapped there directly.
    const outer = definedNames(indexGraph(main));
    const pair = (x: string | undefined, y: string | undefined) => (x === undefined || y === undefined ? undefined : x === y && outer.has(x) ? x : branchTapName(ifName, x, y));
    const layers: LayerTaps[] = a.layers.map((l, i) => {
      const m = b.layers[i]!;
      const attention = l.attention && m.attention && l.attention.kind === m.attention.kind ? { ...l.attention, tensor: pair(l.attention.tensor, m.attention.tensor)! } : undefined;
      return { index: l.index, input: pair(l.input, m.input), output: pair(l.output, m.output)!, ...(attention && { attention }) };
    });
    const hiddenStates = Object.fromEntries(Object.entries(a.hiddenStates).map(([k, t]) => [k, pair(t, b.hiddenStates[k])!]));
    const finalNorm = pair(a.finalNorm, b.finalNorm);
    return {
      graph: main.name,
      stack: a.stack,
      layers,
      embeddingOutput: hiddenStates['hidden_states.0']!,
      ...(finalNorm && { finalNorm }),
      hiddenStates,
      notes: [`layers found in both branches of If "${ifName}" (a merged decoder); taps read whichever branch runs`, ...a.notes.map((n) => `then_branch: ${n}`), ...b.notes.map((n) => `else_branch: ${n}`)],
    };
  }
  return undefined;
}

export function catalogueGraph(graph: GraphProto, opts: CatalogueOptions = {}, subgraphWithLayers: () => string | undefined = () => undefined): TapCatalogue {
  const where = describe(graph, opts);
  const ix = indexGraph(graph);
  let sites: GraphSites;
  try {
    sites = findLayerSites(ix, where);
  } catch (e) {
    throw e instanceof SiteError ? new CatalogueError(e.message) : e;
  }
  if (sites.stacks.length === 0) {
    const inside = subgraphWithLayers();
    if (inside) {
      throw new CatalogueError(
        `${where}: the transformer layers live inside a subgraph (${inside}), as in Optimum "merged" decoders; ` +
          'taps on subgraph tensors are not supported — use the unmerged decoder file',
      );
    }
    const ops = sites.attentionOps.map((a) => describeNode(a.node));
    throw new CatalogueError(
      `${where}: found no transformer layers — looked for attention (a Softmax feeding MatMul(·, V), ONNX Attention, com.microsoft Attention/MultiHeadAttention/GroupQueryAttention) ` +
        `inside a residual block (an Add or SkipLayerNormalization summing a stream with a branch computed from it)` +
        (ops.length ? `; attention ops found outside any residual block: ${ops.join(', ')}` : '; no attention ops found'),
    );
  }
  const stack = opts.stack === undefined ? sites.stacks[0] : sites.stacks.find((s) => s.name === opts.stack);
  if (!stack) throw new CatalogueError(`${where}: no layer stack "${opts.stack}"; stacks found: ${sites.stacks.map((s) => s.name).join(', ')}`);
  const notes = [...sites.notes];
  const layers: LayerTaps[] = stack.layers.map((l) => {
    const attention = attentionTap(graph, l.attention, l.index, notes);
    return { index: l.index, input: l.input, output: l.output, ...(attention && { attention }) };
  });
  const embeddingOutput = layers[0]!.input!;
  const finalNorm = findFinalNorm(ix, layers[layers.length - 1]!.output, notes);
  const hiddenStates: Record<string, string> = { 'hidden_states.0': embeddingOutput };
  for (const l of layers) hiddenStates[`hidden_states.${l.index + 1}`] = l.output;
  return { graph: graph.name, stack: stack.name, layers, embeddingOutput, ...(finalNorm ? { finalNorm } : {}), hiddenStates, notes };
}

function describe(graph: GraphProto, opts: CatalogueOptions): string {
  return `graph "${graph.name}"${opts.label ? ` (${opts.label})` : ''}`;
}

/** The probabilities tensor of a layer's attention op, when the op can give them. */
function attentionTap(graph: GraphProto, a: AttentionOp, layer: number, notes: string[]): AttentionTap | undefined {
  const spec = optionalOutputSpec(a.node);
  if (a.kind === 'gqa' && spec) return { tensor: optionalOutputName(a.node, spec), kind: 'gqa', node: a.node.name };
  if (a.kind === 'onnx-attention' && spec) return { tensor: optionalOutputName(a.node, spec), kind: 'onnx-attention', node: a.node.name };
  if (a.kind === 'softmax') return { tensor: a.node.output[0]!, kind: 'softmax', node: a.node.name };
  if (hasShadowProbs(a.node)) {
    const refusal = shadowProbsRefusal(graph, a.node);
    if (!refusal) return { tensor: shadowProbsName(a.node), kind: 'shadow', node: a.node.name };
    notes.push(`layer ${layer}: ${describeNode(a.node)} exposes no attention probabilities and they cannot be recomputed: ${refusal}`);
    return undefined;
  }
  notes.push(`layer ${layer}: ${describeNode(a.node)} exposes no attention probabilities`);
  return undefined;
}

/**
 * Input of lm_head, when it is not simply the last layer's output. lm_head is the matrix
 * product nearest to `logits` going backwards (int8 exports rescale its int32 result with
 * Cast/Mul after it); its activation is read through any quantize step and reshapes.
 */
function findFinalNorm(ix: GraphIndex, lastOutput: string, notes: string[]): string | undefined {
  // In a merged decoder's branch the output has the branch's own name (Optimum keeps `…logits`).
  const logits = (ix.graph.output.find((o) => o.name === 'logits') ?? ix.graph.output.find((o) => o.name.endsWith('logits')))?.name;
  if (!logits) return undefined;
  const head = nearestProducer(ix, logits, (op) => LM_HEAD_OPS.has(op), 8);
  if (!head) {
    notes.push('logits are not produced by a matrix product; final norm not identified');
    return undefined;
  }
  let t: string | undefined = head.input[0];
  for (let p = t ? ix.producer.get(t) : undefined; t && p && (PASS_THROUGH.has(p.node.opType) || QUANTIZE_OPS.has(p.node.opType)); p = t ? ix.producer.get(t) : undefined) t = p.node.input[0];
  if (!t || t === lastOutput) {
    notes.push('lm_head reads the last layer output directly; no final norm');
    return undefined;
  }
  return t;
}

/** The closest node (fewest steps back from `tensor`, through any input) whose op type matches. */
function nearestProducer(ix: GraphIndex, tensor: string, match: (opType: string) => boolean, maxSteps: number) {
  let frontier = [tensor];
  const seen = new Set<string>();
  for (let step = 0; step < maxSteps && frontier.length; step++) {
    const next: string[] = [];
    for (const t of frontier) {
      const p = ix.producer.get(t);
      if (!p || seen.has(t)) continue;
      seen.add(t);
      if (match(p.node.opType)) return p.node;
      next.push(...p.node.input.filter((n) => n && !ix.constants.has(n)));
    }
    frontier = next;
  }
  return undefined;
}
