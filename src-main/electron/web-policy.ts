/**
 * What the desktop shell lets a page do, as pure functions (no `electron` import, so they are
 * unit-tested without the Electron binary): where it may navigate, which links may leave for the
 * system browser, and which IPC requests main answers.
 */
import { isAppUrl } from '../../src-shared/bridge.ts';

/**
 * Documentation the app may send the user to, in the system browser: model cards, papers, the
 * runtime's docs. Exact host names (no subdomains), https only.
 */
export const EXTERNAL_DOC_HOSTS: readonly string[] = ['huggingface.co', 'arxiv.org', 'onnxruntime.ai', 'github.com'];

const MAX_EXTERNAL_URL = 2048;

/** True only for `https://<allow-listed host>/…` on the default port, without credentials. */
export function externalLinkAllowed(raw: string): boolean {
  if (raw.length > MAX_EXTERNAL_URL) return false;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  return url.protocol === 'https:' && url.port === '' && url.username === '' && url.password === '' && EXTERNAL_DOC_HOSTS.includes(url.hostname);
}

export type NavigationDecision = 'stay' | 'open-externally' | 'deny';

/**
 * A page may move only within our own `loupe://app` origin; an allow-listed documentation link
 * opens in the system browser instead; everything else (http, file:, javascript:, other schemes
 * that launch programs) is refused.
 */
export function navigationDecision(raw: string): NavigationDecision {
  if (isAppUrl(raw)) return 'stay';
  return externalLinkAllowed(raw) ? 'open-externally' : 'deny';
}

/** What main knows about an IPC message's sender. */
export interface IpcSender {
  /** The sending frame is the top frame of its page. */
  isMainFrame: boolean;
  /** That frame's URL (undefined when the frame is gone). */
  frameUrl: string | undefined;
  /** The webContents belongs to a window our factory created. */
  fromOurWindow: boolean;
}

/**
 * `requestPort` carries no payload: only our own top-level `loupe://app` page in one of our
 * windows may ask for an engine port, and anything sent along with the request is refused.
 */
export function portRequestAllowed(sender: IpcSender, args: readonly unknown[]): boolean {
  return sender.fromOurWindow && sender.isMainFrame && sender.frameUrl !== undefined && isAppUrl(sender.frameUrl) && args.length === 0;
}
