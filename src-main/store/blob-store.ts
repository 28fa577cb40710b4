/**
 * Content-addressed blob store for tensor payloads: `<root>/<sha[0:2]>/<sha>.safetensors`.
 * Same bytes → same file, so identical captures are stored once. Writes go to a temp
 * file that is fsynced and renamed, so a crash never leaves a half-written blob under its name.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors, encodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { writeFileAtomicSync } from '../util/atomic-write.ts';

export class BlobStore {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
    mkdirSync(root, { recursive: true });
  }

  pathOf(sha: string): string {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new LoupeError('bad-input', `not a blob id: ${sha}`);
    return join(this.root, sha.slice(0, 2), `${sha}.safetensors`);
  }

  /** Stores tensors as one safetensors file; returns its sha256. */
  putTensors(tensors: Record<string, HostTensor>, metadata: Record<string, string> = {}): string {
    const bytes = encodeSafetensors(tensors, metadata);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const target = this.pathOf(sha);
    if (existsSync(target)) return sha;
    mkdirSync(join(this.root, sha.slice(0, 2)), { recursive: true });
    try {
      writeFileAtomicSync(target, bytes);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new LoupeError('storage', err.code === 'ENOSPC' ? `disk full while writing a tensor blob under ${this.root}` : `cannot write tensor blob: ${err.message}`);
    }
    return sha;
  }

  getTensors(sha: string): Record<string, HostTensor> {
    const path = this.pathOf(sha);
    if (!existsSync(path)) throw new LoupeError('not-found', `tensor blob ${sha} is missing from ${this.root}`);
    const bytes = readFileSync(path);
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== sha) throw new LoupeError('storage', `tensor blob ${sha} is corrupt (content hash ${actual})`);
    return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
  }
}
