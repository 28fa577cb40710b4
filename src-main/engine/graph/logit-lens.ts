/**
 * The LogitLens as a small ONNX model cut out of the model's own decoder: `hidden_state`
 * [batch, rows, hidden] → `logits` [batch, rows, vocab], through exactly the decoder's nodes
 * from the last layer's output to `logits` — its final norm and lm_head.
 *
 * Why cut the graph rather than read the weights and redo the maths in TypeScript: the nodes on
 * that path *are* the family's definition — RMSNorm or LayerNorm, Gemma's (1 + w) scale, the
 * Cast to float32 around Llama's norm, tied embeddings (the lm_head weight is whatever initializer
 * the export feeds that MatMul), int8/q4 lm_heads (MatMulInteger/MatMulNBits), logit soft-capping
 * (Tanh after lm_head) — so nothing family-specific is re-implemented or guessed, and ONNX Runtime
 * does the vocab-sized product. The decoder itself is never re-run: the lens reads stored
 * `text.hidden_states.*` captures.
 *
 * Found from structure (catalogue.ts, the one site finder): the layer stack (in the main graph, or
 * in an If branch of a merged decoder, with weights read from the enclosing scopes), its last
 * output, and the graph output ending in `logits`. The path is every node between them (constant
 * sub-expressions included); it must depend on the last layer's output alone — a graph input on
 * it (e.g. `num_logits_to_keep`) is an error naming the node. ORT-fused decoders fold the last
 * residual Add into the final norm (Skip[Simplified]LayerNormalization, the layer output being its
 * sum output): that node becomes the plain norm it computes ((Simplified)LayerNormalization with
 * the same scale, bias and epsilon) applied to `hidden_state`.
 *
 * The cut model keeps each initializer's external-data `location`, so it is written beside the
 * decoder in Loupe's twin of the model's onnx/ folder (vlm/overlay.ts), never in the model folder.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { clone, create } from '@bufbuild/protobuf';
import {
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  TensorProtoSchema,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  AttributeProto_AttributeType,
  TensorProto_DataType,
} from 'onnx-buf';
import type { ModelProto, NodeProto, TensorProto } from 'onnx-buf';
import { writeFileAtomic } from '../../util/atomic-write.ts';
import { elemTypeOf } from './attention-sites.ts';
import { type TapCatalogue, CatalogueError, catalogueGraph } from './catalogue.ts';
import { indexGraph } from './graph-index.ts';
import { type GraphScope, allGraphs, decodeModel, encodeModel } from './model-proto.ts';
import { optionalOutputName, optionalOutputSpec } from './optional-outputs.ts';
import { describeNode } from './layer-sites.ts';

/** Bump when the cut changes, so cached lens files from older code are not reused. */
export const LENS_FORMAT_VERSION = 1;
export const LENS_INPUT = 'hidden_state';
export const LENS_OUTPUT = 'logits';

export class LensError extends CatalogueError {
  override name = 'LensError';
}

const SKIP_NORMS: Record<string, string> = { SkipLayerNormalization: 'LayerNormalization', SkipSimplifiedLayerNormalization: 'SimplifiedLayerNormalization' };

/** The scope holding the decoder's layer stack and its catalogue (main graph, or the first If branch that has one). */
function decoderScope(model: ModelProto, label: string): { scope: GraphScope; catalogue: TapCatalogue; logits: string } {
  const tried: string[] = [];
  for (const scope of allGraphs(model)) {
    let catalogue: TapCatalogue;
    try {
      catalogue = catalogueGraph(scope.graph, { label: `${label} ${scope.label}` });
    } catch (e) {
      tried.push(`${scope.label}: ${(e as Error).message}`);
      continue;
    }
    const logits = (scope.graph.output.find((o) => o.name === 'logits') ?? scope.graph.output.find((o) => o.name.endsWith('logits')))?.name;
    if (!logits) throw new LensError(`${label} ${scope.label}: the graph with the layer stack ${catalogue.stack} has no output named …logits for the LogitLens to end at`);
    return { scope, catalogue, logits };
  }
  throw new LensError(`${label}: no graph holds a decoder layer stack (${tried.join('; ')})`);
}

/** An initializer visible from `scope`: its own, then the enclosing graphs' (Optimum merged decoders keep weights in the main graph). */
function initializerFrom(scope: GraphScope, name: string): TensorProto | undefined {
  for (let s: GraphScope | undefined = scope; s; s = s.owner?.parent) {
    const t = s.graph.initializer.find((i) => i.name === name);
    if (t) return t;
  }
  return undefined;
}

/** The lens model (not written): `hidden_state` → `logits` through the decoder's final norm and lm_head. */
export function buildLensModel(model: ModelProto, label = 'decoder'): ModelProto {
  const { scope, catalogue, logits } = decoderScope(model, label);
  const graph = scope.graph;
  const ix = indexGraph(graph);
  const last = catalogue.layers[catalogue.layers.length - 1]!.output;
  const nodes = new Map<number, NodeProto>();
  const inits = new Map<string, TensorProto>();
  const seen = new Set<string>();
  let readsHidden = false;
  const rename = (n: NodeProto): NodeProto => {
    const c = clone(NodeProtoSchema, n);
    c.input = c.input.map((i) => (i === last ? LENS_INPUT : i));
    return c;
  };
  const visit = (t: string): void => {
    if (!t || seen.has(t)) return;
    seen.add(t);
    if (t === last) {
      readsHidden = true;
      return;
    }
    const p = ix.producer.get(t);
    if (!p) {
      const init = initializerFrom(scope, t);
      if (init) return void inits.set(t, init);
      throw new LensError(`${label} ${scope.label}: the path from the last layer's output ${last} to ${logits} reads "${t}", which is a graph input, not a weight: the LogitLens needs the logits to depend on the hidden state alone`);
    }
    const node = p.node;
    if (node.attribute.some((a) => a.g || a.graphs.length)) throw new LensError(`${label} ${scope.label}: ${describeNode(node)} (with a subgraph) lies between the last layer and ${logits}; the LogitLens cannot cut through it`);
    const plain = SKIP_NORMS[node.opType];
    if (plain) {
      const spec = optionalOutputSpec(node);
      const sum = node.output[3] || (spec ? optionalOutputName(node, spec) : undefined);
      if (sum !== last || p.slot !== 0) throw new LensError(`${label} ${scope.label}: ${describeNode(node)} on the path to ${logits} is not the final norm fused with the last residual sum (its sum output is ${sum ?? 'absent'}, the last layer's output is ${last})`);
      // norm(input + skip [+ bias]) with the sum being the last layer's output = the plain norm of that output.
      const scaleBias = plain === 'LayerNormalization' ? [node.input[2]!, node.input[3] ?? ''] : [node.input[2]!];
      for (const i of scaleBias) visit(i);
      const epsilon = node.attribute.find((a) => a.name === 'epsilon');
      nodes.set(
        p.at,
        create(NodeProtoSchema, {
          name: `${node.name || plain}/loupe_lens_norm`,
          opType: plain,
          domain: '',
          input: [LENS_INPUT, ...scaleBias].filter((x, k) => k < 2 || x !== ''),
          output: [node.output[0]!],
          attribute: [create(AttributeProtoSchema, { name: 'axis', type: AttributeProto_AttributeType.INT, i: -1n }), ...(epsilon ? [clone(AttributeProtoSchema, epsilon)] : [])],
        }),
      );
      readsHidden = true;
      return;
    }
    for (const i of node.input) visit(i);
    nodes.set(p.at, rename(node));
  };
  visit(logits);
  if (!readsHidden) throw new LensError(`${label} ${scope.label}: ${logits} does not depend on the last layer's output ${last}`);

  const hiddenType = elemTypeOf(ix, last, scope) ?? elemTypeOf(ix, catalogue.layers[catalogue.layers.length - 1]!.input ?? '', scope);
  if (hiddenType === undefined) throw new LensError(`${label} ${scope.label}: cannot tell the element type of the last layer's output ${last}`);
  const dims = ['batch', 'rows', 'hidden'].map((dimParam) => create(TensorShapeProto_DimensionSchema, { value: { case: 'dimParam', value: dimParam } }));
  const input = create(ValueInfoProtoSchema, {
    name: LENS_INPUT,
    type: create(TypeProtoSchema, { value: { case: 'tensorType', value: create(TypeProto_TensorSchema, { elemType: hiddenType, shape: create(TensorShapeProtoSchema, { dim: dims }) }) } }),
  });
  const declared = graph.output.find((o) => o.name === logits);
  const output = declared ? clone(ValueInfoProtoSchema, declared) : create(ValueInfoProtoSchema, { name: logits });
  output.name = LENS_OUTPUT;
  const ordered = [...nodes.entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
  for (const n of ordered) n.output = n.output.map((o) => (o === logits ? LENS_OUTPUT : o));
  return create(ModelProtoSchema, {
    irVersion: model.irVersion,
    opsetImport: model.opsetImport.map((o) => clone(OperatorSetIdProtoSchema, o)),
    producerName: 'loupe-logit-lens',
    // Local functions a node on the path may call (dynamo exports).
    functions: model.functions,
    graph: create(GraphProtoSchema, {
      name: 'logit_lens',
      node: ordered,
      input: [input],
      output: [output],
      initializer: [...inits.values()].map((t) => clone(TensorProtoSchema, t)),
    }),
  });
}

/** `TensorProto_DataType` of the lens input as an ORT dtype name ('float32' | 'float16'). */
export function lensInputDtype(model: ModelProto): 'float32' | 'float16' {
  const t = model.graph?.input[0]?.type?.value;
  const e = t?.case === 'tensorType' ? t.value.elemType : undefined;
  if (e === TensorProto_DataType.FLOAT) return 'float32';
  if (e === TensorProto_DataType.FLOAT16) return 'float16';
  throw new LensError(`the LogitLens input has element type ${String(e)}; float32 or float16 expected`);
}

/**
 * Path of the lens cut from the decoder at `decoderPath` (a file in Loupe's twin folder, so the
 * weights' external data resolve beside it), written once and reused: the name hashes the
 * decoder's bytes and the format version. Written atomically.
 */
export async function lensModelPath(decoderPath: string): Promise<string> {
  const bytes = new Uint8Array(await readFile(decoderPath));
  const key = createHash('sha256').update(bytes).update(`lens-v${LENS_FORMAT_VERSION}`).digest('hex').slice(0, 16);
  const target = join(dirname(decoderPath), `${basename(decoderPath, extname(decoderPath))}.loupe-taps-lens-${key}.onnx`);
  if (existsSync(target)) return target;
  await writeFileAtomic(target, encodeModel(buildLensModel(decodeModel(bytes), basename(decoderPath))));
  return target;
}
