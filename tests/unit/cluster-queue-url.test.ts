/** Queue URLs (passwords, ACL users, TLS, db) and shard splitting, against hand-written expectations. */
import { describe, expect, it } from 'vitest';
import { ioredisOptions, parseQueueUrl, redact } from '../../src-main/cluster/queue-url.ts';
import { shardJobId, splitIntoShards } from '../../src-main/cluster/shard.ts';

describe('parseQueueUrl', () => {
  it('reads host, port and db, defaulting to 6379 and db 0; loopback is recognised', () => {
    expect(parseQueueUrl('redis://127.0.0.1')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0, loopback: true, display: 'redis://127.0.0.1' });
    expect(parseQueueUrl('redis://localhost:6380/3')).toMatchObject({ host: 'localhost', port: 6380, db: 3, loopback: true });
    expect(parseQueueUrl('redis://[::1]:7000')).toMatchObject({ host: '::1', port: 7000, loopback: true });
    expect(parseQueueUrl('redis://gpu-head.lab:6379')).toMatchObject({ host: 'gpu-head.lab', loopback: false });
  });

  it('takes a password for the default user and an ACL user, percent-decoded, and never shows the password', () => {
    const a = parseQueueUrl('redis://:s3cr%40t@127.0.0.1:6379');
    expect(a.password).toBe('s3cr@t');
    expect(a.username).toBeUndefined();
    expect(a.display).toBe('redis://:***@127.0.0.1:6379');
    const b = parseQueueUrl('redis://loupe:pw@10.0.0.5:6379');
    expect([b.username, b.password, b.display]).toEqual(['loupe', 'pw', 'redis://loupe:***@10.0.0.5:6379']);
    expect(ioredisOptions(b)).toMatchObject({ host: '10.0.0.5', port: 6379, username: 'loupe', password: 'pw', maxRetriesPerRequest: null });
  });

  it('rediss:// turns on TLS with the host as server name (certificates are checked)', () => {
    const c = parseQueueUrl('rediss://:pw@redis.example.org:6380');
    expect(c.tls).toEqual({ servername: 'redis.example.org' });
    expect(ioredisOptions(c).tls).toEqual({ servername: 'redis.example.org' });
    expect(ioredisOptions(parseQueueUrl('redis://127.0.0.1')).tls).toBeUndefined();
  });

  it('refuses other schemes, no host and a non-numeric db, with the password redacted', () => {
    expect(() => parseQueueUrl('http://:pw@127.0.0.1:6379')).toThrow(/redis:\/\/ or rediss:\/\/ \(TLS\), not http:\/\//);
    expect(() => parseQueueUrl('127.0.0.1:6379')).toThrow(/--queue must be a URL like redis:/);
    expect(() => parseQueueUrl('redis://:pw@127.0.0.1/x')).toThrow('redis://:***@127.0.0.1/x: the path must be a Redis database number');
    expect(() => parseQueueUrl('not a url :pw@')).toThrow(/--queue must be a URL/);
  });

  it('redacts passwords even in strings that are not URLs', () => {
    // The password ends at the first '@' a URL parser would see as the end of the user info.
    expect(redact('rediss://user:pass@host')).toBe('rediss://user:***@host');
    expect(redact('redis://:x@h:1')).toBe('redis://:***@h:1');
    expect(redact('redis://h:1')).toBe('redis://h:1');
  });
});

describe('splitIntoShards', () => {
  const items = (ords: number[]) => ords.map((ord) => ({ itemId: `i${ord}`, ord }));
  it('cuts contiguous ranges of at most `size` items', () => {
    expect(splitIntoShards(items([0, 1, 2, 3, 4]), 2)).toEqual([
      { from: 0, items: ['i0', 'i1'] },
      { from: 2, items: ['i2', 'i3'] },
      { from: 4, items: ['i4'] },
    ]);
  });
  it('starts a new shard at a gap (items already done), so a range never spans finished work', () => {
    expect(splitIntoShards(items([0, 1, 4, 5, 6, 9]), 3)).toEqual([
      { from: 0, items: ['i0', 'i1'] },
      { from: 4, items: ['i4', 'i5', 'i6'] },
      { from: 9, items: ['i9'] },
    ]);
  });
  it('refuses a non-positive size and gives job ids without BullMQ’s separator', () => {
    expect(() => splitIntoShards(items([0]), 0)).toThrow(/positive integer/);
    expect(shardJobId('run-2026-01-01-abcd', 8, 8)).toBe('run-2026-01-01-abcd.8-16');
    expect(() => shardJobId('run:x', 0, 1)).toThrow(/contains ':'/);
  });
});
