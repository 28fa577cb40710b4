/**
 * The only API the preload exposes to the renderer (`window.loupe`). It is deliberately
 * tiny: it asks main for a MessagePort wired to the engine; everything else goes through
 * the validated contract on that port. (A MessagePort cannot cross the context bridge,
 * so the preload delivers it with `window.postMessage` tagged `PORT_MESSAGE`.)
 */
export interface LoupeBridge {
  /** Asks main for a fresh engine port; it arrives as a window message tagged PORT_MESSAGE. */
  requestEnginePort(): void;
  /** Called when the engine process crashed and was restarted; reconnect then. */
  onEngineRestarted(listener: (info: { reason: string; restarts: number }) => void): void;
}

export const PORT_MESSAGE = 'loupe:engine-port';

export const BRIDGE_CHANNELS = {
  requestPort: 'loupe:request-port',
  port: 'loupe:engine-port',
  restarted: 'loupe:engine-restarted',
} as const;

/** The custom scheme the desktop app serves its renderer from (never file://). */
export const APP_SCHEME = 'loupe';
export const APP_ORIGIN = `${APP_SCHEME}://app`;

/** True only for URLs of our own app origin (parsed, never prefix-matched: `loupe://app.evil` must fail). */
export function isAppUrl(raw: string): boolean {
  try {
    // Compare scheme and host, not `.origin`: WHATWG URL (Node, Electron main) reports the
    // origin of a non-special scheme as "null", so an origin check would refuse everything.
    const url = new URL(raw);
    return url.protocol === `${APP_SCHEME}:` && url.host === 'app';
  } catch {
    return false;
  }
}
