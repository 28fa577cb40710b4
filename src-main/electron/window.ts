/** The window factory: every window gets the same locked-down defaults. */
import { BrowserWindow, type WebContents, session, shell } from 'electron';
import { APP_ORIGIN } from '../../src-shared/bridge.ts';
import { externalLinkAllowed, navigationDecision } from './web-policy.ts';

/** webContents ids of the windows this factory made: the only senders main answers over IPC. */
const ourWindows = new Set<number>();

export function isOurWindow(wc: WebContents): boolean {
  return ourWindows.has(wc.id);
}

export function createMainWindow(preload: string): BrowserWindow {
  const win = new BrowserWindow({
    width: 1400,
    height: 900,
    backgroundColor: '#15171c',
    title: 'Loupe',
    webPreferences: {
      preload,
      sandbox: true,
      contextIsolation: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      webviewTag: false,
      navigateOnDragDrop: false,
      spellcheck: false,
    },
  });
  const id = win.webContents.id;
  ourWindows.add(id);
  win.on('closed', () => ourWindows.delete(id));
  void win.loadURL(`${APP_ORIGIN}/index.html`);
  return win;
}

function openIfAllowed(url: string): void {
  // Checked again right before the OS is asked to open it: openExternal can launch programs.
  if (externalLinkAllowed(url)) void shell.openExternal(url);
}

/**
 * Applied to every webContents the app ever creates (main.ts, 'web-contents-created'): no new
 * windows, no navigation or redirect away from loupe://app in any frame, no <webview>. An
 * allow-listed documentation link (web-policy.ts) opens in the system browser instead.
 */
export function hardenWebContents(contents: WebContents): void {
  contents.setWindowOpenHandler(({ url }) => {
    openIfAllowed(url);
    return { action: 'deny' };
  });
  contents.on('will-frame-navigate', (event) => {
    const decision = navigationDecision(event.url);
    if (decision === 'stay') return;
    event.preventDefault();
    if (decision === 'open-externally' && event.isMainFrame) openIfAllowed(event.url);
  });
  contents.on('will-redirect', (event) => {
    if (navigationDecision(event.url) !== 'stay') event.preventDefault();
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/** The app asks for no permission (camera, notifications, …): deny all. */
export function denyAllPermissions(): void {
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  session.defaultSession.setPermissionCheckHandler(() => false);
  session.defaultSession.setDevicePermissionHandler(() => false);
  // getDisplayMedia: no handler is set, and Electron then refuses every screen-capture request.
}
