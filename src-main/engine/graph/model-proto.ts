/**
 * Reading, writing and walking ONNX ModelProtos.
 *
 * Why onnx-buf (protobuf-es): it keeps unknown fields on re-encode, so a model written by a
 * newer exporter than the schema knows survives our edits unchanged; protobufjs-based
 * packages drop them silently. An untouched model re-encodes byte-identically (tested).
 *
 * Only the `.onnx` graph file is ever read here. Initializers stored as external data keep
 * their `location` (a path relative to the model file) and the `.onnx_data` files are never
 * opened: they can be many GB, and an edited graph written next to the original still points
 * at them.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { clone, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import type { GraphProto, ModelProto, NodeProto } from 'onnx-buf';

export type { GraphProto, ModelProto, NodeProto };

export function decodeModel(bytes: Uint8Array): ModelProto {
  return fromBinary(ModelProtoSchema, bytes);
}

export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function readModelSync(path: string): ModelProto {
  return decodeModel(new Uint8Array(readFileSync(path)));
}

export async function readModel(path: string): Promise<ModelProto> {
  return decodeModel(new Uint8Array(await readFile(path)));
}

/** A deep copy, so edits never leak into a model the caller still holds. */
export function cloneModel(model: ModelProto): ModelProto {
  return clone(ModelProtoSchema, model);
}

/** One graph in a model: the main graph, or a subgraph held by a node attribute. */
export interface GraphScope {
  graph: GraphProto;
  /** Human-readable location, e.g. `main` or `main > If "/model/If" . then_branch`. */
  label: string;
  /** The node that owns this subgraph and the attribute name (`then_branch`, `body`, `g` …); absent for the main graph. */
  owner?: { node: NodeProto; attribute: string; parent: GraphScope };
  depth: number;
}

/**
 * Every graph of the model, main graph first, then subgraphs depth-first in node order.
 * Subgraphs are found through any attribute carrying a graph (`g`) or a list of graphs
 * (`graphs`), which covers If (`then_branch`/`else_branch`), Loop and Scan (`body`) and any
 * custom op, whatever the attribute is called.
 */
export function* allGraphs(model: ModelProto): Generator<GraphScope> {
  if (!model.graph) return;
  yield* walk({ graph: model.graph, label: 'main', depth: 0 });
}

function* walk(scope: GraphScope): Generator<GraphScope> {
  yield scope;
  for (const node of scope.graph.node) {
    for (const attr of node.attribute) {
      const subs = attr.g ? [attr.g] : attr.graphs;
      for (const [k, sub] of subs.entries()) {
        const name = subs.length > 1 ? `${attr.name}[${k}]` : attr.name;
        yield* walk({
          graph: sub,
          label: `${scope.label} > ${node.opType} "${node.name || node.output[0] || '?'}" . ${name}`,
          owner: { node, attribute: name, parent: scope },
          depth: scope.depth + 1,
        });
      }
    }
  }
}

/** The opset version the model imports for a domain ('' = ai.onnx), or undefined. */
export function opsetVersion(model: ModelProto, domain: string): number | undefined {
  const norm = (d: string) => (d === 'ai.onnx' ? '' : d);
  const entry = model.opsetImport.find((o) => norm(o.domain) === norm(domain));
  return entry ? Number(entry.version) : undefined;
}
