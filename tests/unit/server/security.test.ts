import { describe, expect, it } from 'vitest';
import { originAllowed, tokenMatches } from '../../../src-main/server/security.ts';

describe('serve security', () => {
  it('allows only the loopback origin on our own port', () => {
    expect(originAllowed('http://127.0.0.1:4717', 4717)).toBe(true);
    expect(originAllowed('http://localhost:4717', 4717)).toBe(true);
    expect(originAllowed(undefined, 4717)).toBe(true); // non-browser client; token still required
    expect(originAllowed('http://127.0.0.1:4718', 4717)).toBe(false);
    expect(originAllowed('https://evil.example', 4717)).toBe(false);
    expect(originAllowed('http://127.0.0.1.evil.example:4717', 4717)).toBe(false);
    expect(originAllowed('null', 4717)).toBe(false);
  });

  it('compares tokens exactly', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
    expect(tokenMatches('abc', null)).toBe(false);
  });
});
