/**
 * writeFileAtomicSync under a disk that writes short and then fills (issue 23 item 3): `fs.writeSync`
 * is replaced (vitest module mock) by one that writes at most a few bytes per call and can answer
 * ENOSPC/EIO after a byte budget, as a filling disk does. Expected contents are the literal inputs.
 */
import type * as NodeFs from 'node:fs';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LoupeError } from '../../../src-shared/contract/errors.ts';

const disk = vi.hoisted(() => ({ maxPerCall: Infinity, freeBytes: Infinity, failWith: 'ENOSPC', calls: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof NodeFs>();
  const writeSync = ((fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number | null) => {
    disk.calls++;
    const off = offset ?? 0;
    const len = length ?? buffer.byteLength - off;
    if (disk.freeBytes <= 0) throw Object.assign(new Error(`${disk.failWith}: simulated`), { code: disk.failWith });
    const n = Math.min(len, disk.maxPerCall, disk.freeBytes);
    disk.freeBytes -= n;
    return fs.writeSync(fd, buffer, off, n, position ?? null);
  }) as typeof fs.writeSync;
  return { ...fs, default: { ...fs, writeSync }, writeSync };
});

const { writeFileAtomicSync } = await import('../../../src-main/util/atomic-write.ts');

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) % 256);

afterEach(() => {
  Object.assign(disk, { maxPerCall: Infinity, freeBytes: Infinity, failWith: 'ENOSPC', calls: 0 });
});

describe('writeFileAtomicSync', () => {
  it('loops over short writes until every byte is written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loupe-aw-'));
    disk.maxPerCall = 7;
    const data = bytes(100);
    writeFileAtomicSync(join(dir, 'f.bin'), data);
    expect(new Uint8Array(readFileSync(join(dir, 'f.bin')))).toEqual(data);
    expect(disk.calls).toBe(15); // ceil(100 / 7)
    expect(readdirSync(dir)).toEqual(['f.bin']);
  });

  it('on ENOSPC mid-file: a clear storage error, the old file untouched, no temp file left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loupe-aw-'));
    const target = join(dir, 'dataset.json');
    writeFileSync(target, 'old contents');
    disk.maxPerCall = 4;
    disk.freeBytes = 10;
    let err: unknown;
    try {
      writeFileAtomicSync(target, bytes(100));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LoupeError);
    expect((err as LoupeError).code).toBe('storage');
    expect((err as LoupeError).message).toBe(`disk full writing ${target} (10 of 100 bytes written; nothing was saved under that name)`);
    expect((err as LoupeError).details).toMatchObject({ errno: 'ENOSPC', written: 10, total: 100 });
    expect(readFileSync(target, 'utf8')).toBe('old contents');
    expect(readdirSync(dir)).toEqual(['dataset.json']);
  });

  it('on EIO: names the errno and the file, leaves nothing under the final name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loupe-aw-'));
    const target = join(dir, 'mask.png');
    disk.freeBytes = 0;
    disk.failWith = 'EIO';
    expect(() => writeFileAtomicSync(target, bytes(5))).toThrow(`cannot write ${target}: EIO EIO: simulated (0 of 5 bytes written; nothing was saved under that name)`);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a write that makes no progress fails instead of looping forever', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loupe-aw-'));
    const target = join(dir, 'x');
    const stuck = vi.fn(() => 0);
    expect(() => writeFileAtomicSync(target, bytes(3), { write: stuck })).toThrow(/cannot write .*x: EIO write returned 0 bytes/);
    expect(stuck).toHaveBeenCalledTimes(1);
    expect(readdirSync(dir)).toEqual([]);
  });
});
