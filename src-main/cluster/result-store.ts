/**
 * Where workers put finished items and the submitter reads them back for merging.
 *
 * The interface is all a runner's output needs: one record per (run, item) — metrics, values,
 * tensor metadata, provenance — and content-addressed tensor blobs. Records are keyed by run and
 * item, so writing an item twice (a stalled shard redone, a retry) leaves one record, and the
 * merge sees each item once.
 *
 * Implemented here: a shared folder (NFS/SMB/local). An S3-compatible bucket fits the same
 * interface without touching the runners (docs/scale-out.md, "S3 result store"): `putItem`
 * = PUT blob object `blobs/<sha>.safetensors` (If-None-Match: * — same name, same bytes), then PUT
 * `runs/<run>/<hex item>.json` (S3 PUTs are atomic per object, like our rename); `has` = HEAD;
 * `listItems` = ListObjectsV2 with the run's prefix; `readItem`/`readBlob` = GET, re-hashing
 * the blob against its name as below. Only `openResultStore` needs a new `s3://` branch.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { TensorMeta } from '../../src-shared/contract/domain.ts';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { BlobStore } from '../store/blob-store.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';

/** Who computed an item, and with what: recorded with every item and merged into the run's provenance. */
export interface ItemProvenance {
  worker: string;
  ep: string;
  modelHash: string;
  shard: string;
  finishedAt: string;
}

export type ItemRecord = ItemProvenance & { runId: string; itemId: string } & (
    | { ok: true; metrics: Record<string, number>; values: Record<string, unknown>; tensors: { name: string; dtype: TensorMeta['dtype']; shape: number[] }[]; blob: string | null }
    | { ok: false; error: string }
  );

export interface ResultStore {
  /** Where it is, as a user would write it (logs, errors). */
  readonly location: string;
  /** Writes the tensors (content-addressed; the record's `blob` is set to their name) and then the item's record, which appears whole or not at all. */
  putItem(record: ItemRecord, tensors: Record<string, HostTensor>): void;
  has(runId: string, itemId: string): boolean;
  /** Item ids with a record for this run (any order). */
  listItems(runId: string): string[];
  readItem(runId: string, itemId: string): ItemRecord;
  /** A blob's tensors, checked against its content hash. */
  readBlob(sha: string): Record<string, HostTensor>;
}

/** Item ids can hold any character; hex keeps file (and S3 key) names safe and unambiguous. */
const itemKey = (itemId: string) => Buffer.from(itemId, 'utf8').toString('hex');
const itemOfKey = (key: string) => Buffer.from(key, 'hex').toString('utf8');

export class SharedFolderResultStore implements ResultStore {
  readonly location: string;
  private readonly blobs: BlobStore;
  constructor(root: string) {
    this.location = root;
    try {
      mkdirSync(join(root, 'runs'), { recursive: true });
      // No database: the blob store's size records belong to a data folder; here the name (sha256) is the check.
      this.blobs = new BlobStore(join(root, 'blobs'), null);
    } catch (e) {
      throw new LoupeError('storage', `cannot use result store ${root}: ${(e as Error).message} (--store)`);
    }
  }

  private runDir(runId: string): string {
    if (!/^[\w.-]+$/.test(runId)) throw new LoupeError('bad-input', `not a run id: ${runId}`);
    return join(this.location, 'runs', runId);
  }

  putItem(record: ItemRecord, tensors: Record<string, HostTensor>): void {
    const blob = Object.keys(tensors).length ? this.blobs.putTensors(tensors) : null;
    const dir = this.runDir(record.runId);
    mkdirSync(dir, { recursive: true });
    writeFileAtomicSync(join(dir, `${itemKey(record.itemId)}.json`), JSON.stringify(record.ok ? { ...record, blob } : record));
  }

  has(runId: string, itemId: string): boolean {
    return existsSync(join(this.runDir(runId), `${itemKey(itemId)}.json`));
  }

  listItems(runId: string): string[] {
    const dir = this.runDir(runId);
    if (!existsSync(dir)) return [];
    // Temp files of a write in flight (atomic-write.ts) end in .tmp-…, never in .json.
    return readdirSync(dir)
      .filter((f) => /^[0-9a-f]*\.json$/.test(f))
      .map((f) => itemOfKey(f.slice(0, -5)));
  }

  readItem(runId: string, itemId: string): ItemRecord {
    const path = join(this.runDir(runId), `${itemKey(itemId)}.json`);
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as ItemRecord;
    } catch (e) {
      throw new LoupeError('storage', `cannot read result of item ${itemId} of run ${runId} from ${path}: ${(e as Error).message}`);
    }
  }

  readBlob(sha: string): Record<string, HostTensor> {
    const path = this.blobs.pathOf(sha);
    if (!existsSync(path)) throw new LoupeError('not-found', `tensor blob ${sha} is missing from result store ${this.location}`);
    const bytes = readFileSync(path);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha) throw new LoupeError('storage', `tensor blob ${sha} in result store ${this.location} is corrupt (content hash ${actual})`);
    return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  }
}

/** A store from `--store`: a folder path (or file:// URL). `s3://` is the documented extension point. */
export function openResultStore(location: string): ResultStore {
  if (/^s3:\/\//i.test(location)) throw new LoupeError('bad-input', `result store ${location}: S3 buckets are not implemented yet (docs/scale-out.md, "S3 result store"); use a shared folder`);
  const path = location.startsWith('file://') ? new URL(location).pathname : location;
  return new SharedFolderResultStore(resolve(path));
}
