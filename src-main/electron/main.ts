/**
 * Electron main: lifecycle, the custom protocol, the window factory and the engine
 * supervisor. Nothing heavy runs here — the engine lives in a utility process.
 */
import { app, ipcMain } from 'electron';
import { join } from 'node:path';
import { BRIDGE_CHANNELS } from '../../src-shared/bridge.ts';
import { EngineSupervisor } from './engine-supervisor.ts';
import { registerSchemeAsPrivileged, serveRenderer } from './protocol.ts';
import { portRequestAllowed } from './web-policy.ts';
import { createMainWindow, denyAllPermissions, hardenWebContents, isOurWindow } from './window.ts';

// Every renderer sandboxed, whatever a webPreferences says; before 'ready', as Electron requires.
app.enableSandbox();
registerSchemeAsPrivileged();

const resourcesDir = app.isPackaged ? join(process.resourcesPath, 'resources') : join(app.getAppPath(), 'resources');
const supervisor = new EngineSupervisor(join(import.meta.dirname, 'engine-host.js'), [join(app.getPath('userData'), 'data'), resourcesDir, app.getVersion()]);

// Navigation, new-window and <webview> rules on every webContents, including any made later.
app.on('web-contents-created', (_event, contents) => hardenWebContents(contents));

void app.whenReady().then(() => {
  denyAllPermissions();
  serveRenderer(join(import.meta.dirname, '..', 'renderer'));
  supervisor.start();
  ipcMain.on(BRIDGE_CHANNELS.requestPort, (event, ...args: unknown[]) => {
    // Only our own top-level page, in a window we made, asking with no payload, gets an engine port.
    const frame = event.senderFrame;
    const sender = { isMainFrame: !!frame && frame === event.sender.mainFrame, frameUrl: frame?.url, fromOurWindow: isOurWindow(event.sender) };
    if (!portRequestAllowed(sender, args)) {
      console.warn(`loupe: refused an engine-port request from ${sender.frameUrl ?? 'a destroyed frame'} (main frame: ${sender.isMainFrame}, our window: ${sender.fromOurWindow}, ${args.length} extra arguments)`);
      return;
    }
    supervisor.connect(event.sender);
  });
  createMainWindow(join(import.meta.dirname, '..', 'preload', 'index.cjs'));
});

app.on('window-all-closed', () => {
  supervisor.stop();
  app.quit();
});
