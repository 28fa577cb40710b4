import { describe, expect, it } from 'vitest';
import { isAppUrl } from '../../../src-shared/bridge.ts';

describe('isAppUrl (guards navigation and IPC senders in Electron)', () => {
  it('accepts only the loupe://app origin', () => {
    expect(isAppUrl('loupe://app/index.html')).toBe(true);
    expect(isAppUrl('loupe://app/#/runs')).toBe(true);
    expect(isAppUrl('loupe://app.evil/index.html')).toBe(false);
    expect(isAppUrl('loupe://evil/app')).toBe(false);
    expect(isAppUrl('https://app/index.html')).toBe(false);
    expect(isAppUrl('file:///work/main/out/renderer/index.html')).toBe(false);
    expect(isAppUrl('not a url')).toBe(false);
  });
});
