/**
 * The queue URL: `redis://[user][:password]@host[:port][/db]` or `rediss://…` (TLS). Parsed into
 * the connection options BullMQ passes to ioredis, and redacted (password → ***) for every log
 * line, event and error, so a password given on the command line never reaches a screen or a file.
 */
import { LoupeError } from '../../src-shared/contract/errors.ts';

export interface QueueConnection {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db: number;
  /** `rediss://`: TLS with the system's CA store (servername = host, so certificates are checked). */
  tls?: { servername: string };
  /** The URL with its password replaced by `***`: what logs and errors show. */
  display: string;
  /** Whether the host is a loopback address (an ssh tunnel, or Redis on this box). */
  loopback: boolean;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|::1|\[::1\])$/i;

export function parseQueueUrl(raw: string): QueueConnection {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LoupeError('bad-input', `--queue must be a URL like redis://127.0.0.1:6379 or rediss://:password@host:6380, not "${redact(raw)}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new LoupeError('bad-input', `--queue must use redis:// or rediss:// (TLS), not ${url.protocol}// (${redact(raw)})`);
  if (!url.hostname) throw new LoupeError('bad-input', `--queue ${redact(raw)} names no host`);
  const port = url.port ? Number(url.port) : 6379;
  const dbPath = url.pathname.replace(/^\//, '');
  const db = dbPath === '' ? 0 : Number(dbPath);
  if (!Number.isInteger(db) || db < 0) throw new LoupeError('bad-input', `--queue ${redact(raw)}: the path must be a Redis database number (e.g. /0), not "/${dbPath}"`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port,
    db,
    ...(url.username && { username: decodeURIComponent(url.username) }),
    ...(url.password && { password: decodeURIComponent(url.password) }),
    ...(url.protocol === 'rediss:' && { tls: { servername: host } }),
    display: redact(raw),
    loopback: LOOPBACK.test(url.hostname),
  };
}

/** The URL with any password replaced by `***` (also for strings that do not parse). */
export function redact(raw: string): string {
  return raw.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/i, '$1***@');
}

/** ioredis options for BullMQ: commands wait through an outage (maxRetriesPerRequest null, as BullMQ workers require). */
export function ioredisOptions(c: QueueConnection): Record<string, unknown> {
  return {
    host: c.host,
    port: c.port,
    db: c.db,
    ...(c.username && { username: c.username }),
    ...(c.password && { password: c.password }),
    ...(c.tls && { tls: c.tls }),
    maxRetriesPerRequest: null,
    // Reconnect every ≤ 2 s for as long as it takes: a restarted Redis is picked up without a restart of ours.
    retryStrategy: (times: number) => Math.min(200 * times, 2000),
  };
}
