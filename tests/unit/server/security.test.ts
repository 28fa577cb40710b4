import { describe, expect, it } from 'vitest';
import { allowedHosts, cookieValues, hostAllowed, newToken, originAllowed, sessionCookie, tokenMatches, tokenWeakness } from '../../../src-main/server/security.ts';
import { resolveServeOptions } from '../../../src-main/server/serve-options.ts';

const LOOPBACK = allowedHosts('127.0.0.1', 4717);

describe('Host allow-list (DNS rebinding)', () => {
  it('accepts the loopback names on our port only', () => {
    expect([...LOOPBACK].sort()).toEqual(['127.0.0.1:4717', '[::1]:4717', 'localhost:4717']);
    for (const h of ['127.0.0.1:4717', 'localhost:4717', 'LOCALHOST:4717', '[::1]:4717']) expect(hostAllowed(h, LOOPBACK), h).toBe(true);
  });

  it('refuses other names, other ports, a missing port (80), and junk', () => {
    for (const h of [undefined, '', 'evil.example:4717', 'evil.example', '127.0.0.1', '127.0.0.1:4718', 'localhost.:4717', '127.0.0.1.nip.io:4717', 'a@127.0.0.1:4717', '127.0.0.1:4717/x', ' 127.0.0.1:4717', '127.0.0.1:04717x']) {
      expect(hostAllowed(h, LOOPBACK), String(h)).toBe(false);
    }
  });

  it('adds the bound address and --allow-host names; port 80 may be implied', () => {
    const hosts = allowedHosts('192.168.1.20', 80, ['gpu-box.lan', '::1']);
    expect(hostAllowed('192.168.1.20', hosts)).toBe(true);
    expect(hostAllowed('gpu-box.lan:80', hosts)).toBe(true);
    expect(hostAllowed('[::1]', hosts)).toBe(true);
    expect(hostAllowed('gpu-box.lan.evil.example', hosts)).toBe(false);
  });

  it('a wildcard bind allows the addresses of this machine (IP literals, which a rebinding page cannot send)', () => {
    const hosts = allowedHosts('0.0.0.0', 5000);
    expect(hosts.has('0.0.0.0:5000')).toBe(true);
    expect(hosts.has('127.0.0.1:5000')).toBe(true);
    for (const h of hosts) expect(h).toMatch(/^(\[[0-9a-f:.]+\]|[0-9.]+|localhost):5000$/);
  });
});

describe('Origin allow-list', () => {
  it('allows only http pages of our own host:port', () => {
    expect(originAllowed('http://127.0.0.1:4717', LOOPBACK)).toBe(true);
    expect(originAllowed('http://localhost:4717', LOOPBACK)).toBe(true);
    expect(originAllowed('http://[::1]:4717', LOOPBACK)).toBe(true);
    expect(originAllowed(undefined, LOOPBACK)).toBe(true); // non-browser client; token still required
    for (const o of ['http://127.0.0.1:4718', 'https://127.0.0.1:4717', 'https://evil.example', 'http://127.0.0.1.evil.example:4717', 'null', 'http://evil.example:4717', '']) {
      expect(originAllowed(o, LOOPBACK), o).toBe(false);
    }
  });
});

describe('tokens', () => {
  it('compares tokens exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
    expect(tokenMatches('abc', null)).toBe(false);
  });

  it('generates 256-bit tokens: 43 base64url characters from 32 random bytes', () => {
    const t = newToken();
    expect(t).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    expect(newToken()).not.toBe(t);
    expect(tokenWeakness(t)).toBeNull();
  });

  it('accepts ≥ 128 bits: 32 hex digits (128), 22 base64url (132), 39 decimal digits (129.6)', () => {
    expect(tokenWeakness('0123456789abcdef0123456789abcdef')).toBeNull();
    expect(tokenWeakness('Ab3_x-9QzLm2Pq7RtU1vWy')).toBeNull();
    expect(tokenWeakness('012345678901234567890123456789012345678')).toBeNull();
  });

  it('refuses < 128 bits, naming the requirement: "a", 31 hex digits (124), 21 base64url (126), 38 digits (126.2)', () => {
    for (const t of ['a', '0123456789abcdef0123456789abcde', 'Ab3_x-9QzLm2Pq7RtU1vW', '01234567890123456789012345678901234567', 'e2e-token', 'test-token-123']) {
      expect(tokenWeakness(t), t).toMatch(/at least 128 bits/);
    }
    expect(tokenWeakness('a')).toMatch(/has 1 character \(hex digits\), about 4 bits/);
    expect(tokenWeakness('e2e-token')).toMatch(/has 9 characters \(base64url characters\), about 54 bits/);
  });

  it('refuses characters that would need escaping in a URL or cookie, and repetitive tokens', () => {
    expect(tokenWeakness('0123456789abcdef0123456789abcdef;x')).toMatch(/may only use/);
    expect(tokenWeakness('abababababababababababababababababababab')).toMatch(/too few characters \(2 distinct\)/);
  });
});

describe('session cookie', () => {
  it('is HttpOnly, SameSite=Strict, Path=/, named per port', () => {
    expect(sessionCookie(4717, 'T')).toBe('loupe_token_4717=T; HttpOnly; SameSite=Strict; Path=/');
  });

  it('reads every value of one cookie name from a Cookie header', () => {
    expect(cookieValues('a=1; loupe_token_1=x; loupe_token_12=y; loupe_token_1=z', 'loupe_token_1')).toEqual(['x', 'z']);
    expect(cookieValues(undefined, 'loupe_token_1')).toEqual([]);
    expect(cookieValues('=x; loupe_token_1', 'loupe_token_1')).toEqual([]);
  });
});

describe('loupe serve options: --port > $LOUPE_PORT > 0, token strength', () => {
  const STRONG = 'Ab3_x-9QzLm2Pq7RtU1vWy';
  it('takes the port from the flag, else LOUPE_PORT, else 0', () => {
    expect(resolveServeOptions({ port: '5001', token: STRONG }, { LOUPE_PORT: '5002' }).port).toBe(5001);
    expect(resolveServeOptions({ token: STRONG }, { LOUPE_PORT: '5002' }).port).toBe(5002);
    expect(resolveServeOptions({ token: STRONG }, {}).port).toBe(0);
    expect(resolveServeOptions({ port: '0', token: STRONG }, { LOUPE_PORT: '5002' }).port).toBe(0);
  });

  it('refuses bad ports naming where they came from', () => {
    expect(() => resolveServeOptions({}, { LOUPE_PORT: 'abc' })).toThrow(/LOUPE_PORT must be a port number from 0 .* to 65535, got "abc"/);
    expect(() => resolveServeOptions({ port: '70000' }, {})).toThrow(/--port must be a port number/);
    expect(() => resolveServeOptions({ port: '-1' }, {})).toThrow(/--port must be a port number/);
  });

  it('refuses --token a with the 128-bit requirement; no --token gives a fresh 256-bit one', () => {
    expect(() => resolveServeOptions({ token: 'a' }, {})).toThrow(/--token refused: .*at least 128 bits/);
    expect(resolveServeOptions({}, {}).token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('reads the message limit from LOUPE_MAX_MESSAGE_BYTES and --allow-host as a list', () => {
    expect(resolveServeOptions({ token: STRONG }, {}).maxMessageBytes).toBe(1048576);
    expect(resolveServeOptions({ token: STRONG }, { LOUPE_MAX_MESSAGE_BYTES: '4096' }).maxMessageBytes).toBe(4096);
    expect(() => resolveServeOptions({ token: STRONG }, { LOUPE_MAX_MESSAGE_BYTES: '1e9' })).toThrow(/LOUPE_MAX_MESSAGE_BYTES must be/);
    expect(resolveServeOptions({ token: STRONG, 'allow-host': 'gpu-box, gpu-box.lan' }, {}).allowHosts).toEqual(['gpu-box', 'gpu-box.lan']);
  });
});
