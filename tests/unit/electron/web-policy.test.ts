import { describe, expect, it } from 'vitest';
import { EXTERNAL_DOC_HOSTS, externalLinkAllowed, navigationDecision, portRequestAllowed } from '../../../src-main/electron/web-policy.ts';

describe('external links (shell.openExternal allow-list)', () => {
  it('opens https links to the documentation hosts only', () => {
    expect(EXTERNAL_DOC_HOSTS).toEqual(['huggingface.co', 'arxiv.org', 'onnxruntime.ai', 'github.com']);
    for (const u of ['https://huggingface.co/llava-hf/llava-1.5-7b-hf', 'https://arxiv.org/abs/2310.03744', 'https://onnxruntime.ai/docs/', 'https://github.com/microsoft/onnxruntime', 'https://HuggingFace.co/x']) {
      expect(externalLinkAllowed(u), u).toBe(true);
    }
  });

  it('refuses other schemes, hosts, subdomains, look-alikes, ports and credentials', () => {
    for (const u of [
      'http://huggingface.co/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'smb://huggingface.co/share',
      'ms-msdt:/id PCWDiagnostic',
      'https://evil.example/',
      'https://huggingface.co.evil.example/',
      'https://evilhuggingface.co/',
      'https://docs.huggingface.co/',
      'https://huggingface.co:8443/',
      'https://user:pw@huggingface.co/',
      'https://user@github.com/',
      'loupe://app/index.html',
      'not a url',
      `https://arxiv.org/${'a'.repeat(2100)}`,
    ]) {
      expect(externalLinkAllowed(u), u).toBe(false);
    }
  });
});

describe('navigation', () => {
  it('stays only within loupe://app; doc links go to the system browser; everything else is denied', () => {
    expect(navigationDecision('loupe://app/index.html')).toBe('stay');
    expect(navigationDecision('loupe://app/index.html#/runs')).toBe('stay');
    expect(navigationDecision('https://arxiv.org/abs/2310.03744')).toBe('open-externally');
    for (const u of ['loupe://app.evil/index.html', 'loupe://other/', 'file:///etc/passwd', 'http://127.0.0.1:4717/', 'https://evil.example/', 'about:blank', 'data:text/html,hi']) {
      expect(navigationDecision(u), u).toBe('deny');
    }
  });
});

describe('IPC: engine-port requests', () => {
  const ok = { isMainFrame: true, frameUrl: 'loupe://app/index.html', fromOurWindow: true };
  it('answers our own top-level page in our window, sending no payload', () => {
    expect(portRequestAllowed(ok, [])).toBe(true);
  });

  it('refuses subframes, other origins, destroyed frames, foreign windows and any payload', () => {
    expect(portRequestAllowed({ ...ok, isMainFrame: false }, [])).toBe(false);
    expect(portRequestAllowed({ ...ok, frameUrl: 'https://evil.example/' }, [])).toBe(false);
    expect(portRequestAllowed({ ...ok, frameUrl: 'loupe://app.evil/' }, [])).toBe(false);
    expect(portRequestAllowed({ ...ok, frameUrl: undefined }, [])).toBe(false);
    expect(portRequestAllowed({ ...ok, fromOurWindow: false }, [])).toBe(false);
    expect(portRequestAllowed(ok, [{ path: '/etc/passwd' }])).toBe(false);
  });
});
