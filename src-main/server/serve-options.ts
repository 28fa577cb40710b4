/**
 * `loupe serve`'s settings from its flags and environment, checked before anything starts:
 * port = --port, else $LOUPE_PORT, else 0 (any free port); the token must carry ≥ 128 bits.
 */
import { LoupeError } from '../../src-shared/contract/errors.ts';
import { newToken, tokenWeakness } from './security.ts';

/** 1 MiB: the largest JSON request or WebSocket message (tensors only flow engine → client). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1 << 20;

export interface ServeFlags {
  port?: string;
  host?: string;
  token?: string;
  /** Extra names the Host header may carry (comma-separated), e.g. the GPU box's DNS name. */
  'allow-host'?: string;
}

export interface ResolvedServeOptions {
  host: string;
  port: number;
  token: string;
  allowHosts: string[];
  maxMessageBytes: number;
}

function parsePort(raw: string, source: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(port) || port > 65535) throw new LoupeError('bad-input', `${source} must be a port number from 0 (any free port) to 65535, got ${JSON.stringify(raw)}`);
  return port;
}

function parseBytes(raw: string, source: string): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < 1024) throw new LoupeError('bad-input', `${source} must be a whole number of bytes ≥ 1024, got ${JSON.stringify(raw)}`);
  return n;
}

export function resolveServeOptions(flags: ServeFlags, env: Record<string, string | undefined>): ResolvedServeOptions {
  const port = flags.port !== undefined ? parsePort(flags.port, '--port') : env.LOUPE_PORT ? parsePort(env.LOUPE_PORT, 'LOUPE_PORT') : 0;
  let token = flags.token;
  if (token !== undefined) {
    const weak = tokenWeakness(token);
    if (weak) throw new LoupeError('bad-input', `--token refused: ${weak}`);
  } else token = newToken();
  const maxMessageBytes = env.LOUPE_MAX_MESSAGE_BYTES ? parseBytes(env.LOUPE_MAX_MESSAGE_BYTES, 'LOUPE_MAX_MESSAGE_BYTES') : DEFAULT_MAX_MESSAGE_BYTES;
  const allowHosts = (flags['allow-host'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  return { host: flags.host ?? '127.0.0.1', port, token, allowHosts, maxMessageBytes };
}
