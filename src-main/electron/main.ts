/**
 * Electron main: lifecycle, the custom protocol, the window factory and the engine
 * supervisor. Nothing heavy runs here — the engine lives in a utility process.
 */
import { app, ipcMain } from 'electron';
import { join } from 'node:path';
import { BRIDGE_CHANNELS, isAppUrl } from '../../src-shared/bridge.ts';
import { EngineSupervisor } from './engine-supervisor.ts';
import { registerSchemeAsPrivileged, serveRenderer } from './protocol.ts';
import { createMainWindow, denyAllPermissions } from './window.ts';

registerSchemeAsPrivileged();

const resourcesDir = app.isPackaged ? join(process.resourcesPath, 'resources') : join(app.getAppPath(), 'resources');
const supervisor = new EngineSupervisor(join(import.meta.dirname, 'engine-host.js'), [join(app.getPath('userData'), 'data'), resourcesDir, app.getVersion()]);

void app.whenReady().then(() => {
  denyAllPermissions();
  serveRenderer(join(import.meta.dirname, '..', 'renderer'));
  supervisor.start();
  ipcMain.on(BRIDGE_CHANNELS.requestPort, (event) => {
    // Only our own top-level page may ask for an engine port.
    const frame = event.senderFrame;
    if (!frame || frame !== event.sender.mainFrame || !isAppUrl(frame.url)) return;
    supervisor.connect(event.sender);
  });
  createMainWindow(join(import.meta.dirname, '..', 'preload', 'index.cjs'));
});

app.on('window-all-closed', () => {
  supervisor.stop();
  app.quit();
});
