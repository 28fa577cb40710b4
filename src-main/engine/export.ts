/** Run exports that leave Loupe: all of a run's tensors in one safetensors file for Python. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { encodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import type { Store } from '../store/store.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';

export function exportRunTensors(store: Store, runId: string, dir: string): { path: string; bytes: number; tensors: number } {
  const run = store.runs.get(runId);
  const tensors: Record<string, HostTensor> = {};
  for (const result of store.runs.results(runId)) {
    // One blob holds all tensors of an item: read it once per item.
    const blobs = new Map<string, Record<string, HostTensor>>();
    for (const meta of result.tensors) {
      let blob = blobs.get(meta.blob);
      if (!blob) blobs.set(meta.blob, (blob = store.blobs.getTensors(meta.blob)));
      tensors[`${result.itemId}/${meta.name}`] = blob[meta.name]!;
    }
  }
  const bytes = encodeSafetensors(tensors, { run: run.id, kind: run.kind, model_hash: run.provenance.modelHash, dataset_hash: run.provenance.datasetHash, spec: JSON.stringify(run.spec) });
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${run.id}.safetensors`);
  writeFileAtomicSync(path, bytes);
  return { path, bytes: bytes.byteLength, tensors: Object.keys(tensors).length };
}
