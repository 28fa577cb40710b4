/**
 * The serve-mode gatekeepers: a per-launch token of at least 128 bits, a Host allow-list (DNS
 * rebinding), a same-origin rule for browsers, and the session cookie the token turns into.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { networkInterfaces } from 'node:os';

export const MIN_TOKEN_BITS = 128;

/** 32 random bytes: 256 bits, 43 base64url characters. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The alphabets a token may be written in, smallest first: a token's strength is estimated as
 * length × log2(size of the smallest alphabet holding all its characters), which is exact for a
 * random token and an over-estimate for anything a person typed, hence the repetition rule too.
 */
const ALPHABETS: [name: string, re: RegExp, size: number][] = [
  ['decimal digits', /^[0-9]+$/, 10],
  ['hex digits', /^([0-9a-f]+|[0-9A-F]+)$/, 16],
  ['one-case letters and digits', /^([0-9a-z]+|[0-9A-Z]+)$/, 36],
  ['letters and digits', /^[0-9A-Za-z]+$/, 62],
  ['base64url characters', /^[0-9A-Za-z_-]+$/, 64],
];
const MIN_DISTINCT_CHARACTERS = 8;

/** Why `token` is too weak to guard the engine, or null when it carries ≥ 128 bits. */
export function tokenWeakness(token: string): string | null {
  const advice = `Loupe needs a token of at least ${MIN_TOKEN_BITS} bits (22 random base64url characters, or 32 hex digits from \`openssl rand -hex 32\`); leave --token out to get a random 256-bit one`;
  const alphabet = ALPHABETS.find(([, re]) => re.test(token));
  // The token travels in URLs and a cookie: only URL- and cookie-safe characters, no escaping.
  if (!alphabet) return `the token may only use A-Z, a-z, 0-9, '-' and '_' (it travels in a URL and a cookie); ${advice}`;
  const [name, , size] = alphabet;
  const bits = Math.floor(token.length * Math.log2(size));
  if (bits < MIN_TOKEN_BITS) return `the token has ${token.length} character${token.length === 1 ? '' : 's'} (${name}), about ${bits} bits; ${advice}`;
  if (new Set(token).size < MIN_DISTINCT_CHARACTERS) return `the token repeats too few characters (${new Set(token).size} distinct) to be random; ${advice}`;
  return null;
}

export function tokenMatches(expected: string, given: string | null | undefined): boolean {
  if (!given) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const WILDCARD_BINDS = new Set(['0.0.0.0', '::', '[::]']);

/** A host as it appears in a Host header or URL: IPv6 literals in brackets, lower case. */
export function hostForUrl(host: string): string {
  const h = host.toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

/**
 * The `host:port` values a request may name in its Host header (and a browser page in its Origin):
 * the loopback names, the address we were told to bind, names added with --allow-host, and for a
 * wildcard bind every address of this machine. A DNS-rebinding page reaches us under its own
 * name (evil.example:port), which is never on the list.
 */
export function allowedHosts(bindHost: string, port: number, extra: readonly string[] = []): Set<string> {
  const names = new Set([...LOOPBACK_NAMES, hostForUrl(bindHost), ...extra.map(hostForUrl)]);
  if (WILDCARD_BINDS.has(bindHost)) {
    for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) names.add(hostForUrl(a.address.replace(/%.*$/, '')));
  }
  return new Set([...names].map((n) => `${n}:${port}`));
}

const HOST_HEADER = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/;

/** True when the Host header names us (port 80 when it has none, as HTTP says). */
export function hostAllowed(hostHeader: string | undefined, allowed: ReadonlySet<string>): boolean {
  const m = HOST_HEADER.exec((hostHeader ?? '').toLowerCase());
  if (!m) return false;
  return allowed.has(`${m[1]}:${m[2] ? Number(m[2]) : 80}`);
}

/**
 * Browsers always send Origin on WebSocket upgrades and cross-site POSTs; only pages this server
 * served (http, one of our host:port values) may talk to the engine. A missing Origin is a
 * non-browser client (CLI, curl), which must then present the token itself (see serve.ts).
 */
export function originAllowed(origin: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' || url.username || url.password || url.pathname !== '/' || origin.endsWith('/')) return false;
  return allowed.has(`${url.hostname}:${url.port === '' ? 80 : Number(url.port)}`);
}

/**
 * One cookie per port: cookies ignore ports, so two servers on one machine would otherwise
 * overwrite each other's session.
 */
export function sessionCookieName(port: number): string {
  return `loupe_token_${port}`;
}

/** HttpOnly (page scripts never see it), SameSite=Strict (no other site's request carries it), whole site. */
export function sessionCookie(port: number, token: string): string {
  return `${sessionCookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

/** Every value the Cookie header gives for `name` (a browser may send duplicates). */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim());
  }
  return out;
}
