/**
 * Preload (sandboxed, built as one CJS file): exposes `window.loupe` with one method per
 * message and nothing generic — no raw ipcRenderer ever reaches the page.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { BRIDGE_CHANNELS, type LoupeBridge, PORT_MESSAGE } from '../../src-shared/bridge.ts';

ipcRenderer.on(BRIDGE_CHANNELS.port, (event) => {
  // Main sends exactly one port per request; anything else is not ours to pass on.
  if (event.ports.length !== 1) return;
  // MessagePorts cannot cross the context bridge; post it into the page's own window.
  window.postMessage(PORT_MESSAGE, window.location.origin, event.ports);
});

const bridge: LoupeBridge = {
  requestEnginePort: () => ipcRenderer.send(BRIDGE_CHANNELS.requestPort),
  onEngineRestarted: (listener) => {
    ipcRenderer.on(BRIDGE_CHANNELS.restarted, (_e, info: { reason: string; restarts: number }) => listener({ reason: String(info.reason), restarts: Number(info.restarts) }));
  },
};

contextBridge.exposeInMainWorld('loupe', bridge);
