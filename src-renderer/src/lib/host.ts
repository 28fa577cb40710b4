/** One UI over two hosts: the preload's bridge when in Electron, a WebSocket otherwise. */
import { EngineClient } from '../../../src-shared/contract/client.ts';
import { type LoupeBridge, PORT_MESSAGE } from '../../../src-shared/bridge.ts';
import { messagePortTransport } from './transports/message-port.ts';
import { openWebSocketTransport } from './transports/websocket.ts';

declare global {
  interface Window {
    loupe?: LoupeBridge;
  }
}

function enginePort(bridge: LoupeBridge): Promise<MessagePort> {
  return new Promise((resolve) => {
    const onMessage = (e: MessageEvent) => {
      // Only the preload (same window, same origin) may hand us the port.
      if (e.source !== window || e.origin !== location.origin || e.data !== PORT_MESSAGE || !e.ports[0]) return;
      window.removeEventListener('message', onMessage);
      resolve(e.ports[0]);
    };
    window.addEventListener('message', onMessage);
    bridge.requestEnginePort();
  });
}

export async function connectEngine(): Promise<EngineClient> {
  if (window.loupe) return new EngineClient(messagePortTransport(await enginePort(window.loupe)));
  // `loupe serve` moves the token from the first URL into an HttpOnly cookie, which the socket
  // carries; a token still in the address (a script or an old link) is passed on as before.
  const token = new URLSearchParams(location.search).get('token');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return new EngineClient(await openWebSocketTransport(`${scheme}://${location.host}/engine${token ? `?token=${encodeURIComponent(token)}` : ''}`));
}
