/**
 * Runs the engine in an Electron utility process and keeps it alive: on a crash it is
 * restarted (with backoff) and every window is told, so the UI can reconnect; runs that
 * were in flight resume from their ledger on the new engine's start.
 */
import { MessageChannelMain, type UtilityProcess, type WebContents, dialog, utilityProcess } from 'electron';
import { afterEngineExit } from './engine-restart.ts';
import { BRIDGE_CHANNELS } from '../../src-shared/bridge.ts';

export class EngineSupervisor {
  private child: UtilityProcess | null = null;
  private restarts = 0;
  private stopping = false;
  private readonly entry: string;
  private readonly args: string[];
  private readonly windows = new Set<WebContents>();

  constructor(entry: string, args: string[]) {
    this.entry = entry;
    this.args = args;
  }

  start(): void {
    const child = utilityProcess.fork(this.entry, this.args, { serviceName: 'Loupe engine', stdio: 'inherit' });
    let fatal: { code: string; message: string } | null = null;
    child.on('message', (m: unknown) => {
      const msg = m as { type?: string; code?: unknown; message?: unknown };
      if (msg?.type === 'fatal' && typeof msg.code === 'string' && typeof msg.message === 'string') fatal = { code: msg.code, message: msg.message };
    });
    child.on('exit', (code) => {
      this.child = null;
      if (this.stopping) return;
      const decision = afterEngineExit(code, this.restarts + 1, fatal);
      if (!decision.restart) {
        // E.g. another Loupe (or `loupe serve`) holds this data folder: say so once and stay down.
        dialog.showErrorBox('Loupe cannot start its engine', decision.reason);
        for (const wc of this.windows) if (!wc.isDestroyed()) wc.send(BRIDGE_CHANNELS.restarted, { reason: decision.reason, restarts: this.restarts });
        return;
      }
      this.restarts++;
      setTimeout(() => {
        this.start();
        for (const wc of this.windows) if (!wc.isDestroyed()) wc.send(BRIDGE_CHANNELS.restarted, { reason: decision.reason, restarts: this.restarts });
      }, decision.delayMs);
    });
    this.child = child;
  }

  /** Gives a window its own port straight to the engine (main never relays engine traffic). */
  connect(wc: WebContents): void {
    if (!this.child) throw new Error('engine is not running');
    const { port1, port2 } = new MessageChannelMain();
    this.child.postMessage({ type: 'port' }, [port1]);
    wc.postMessage(BRIDGE_CHANNELS.port, null, [port2]);
    this.windows.add(wc);
    wc.once('destroyed', () => this.windows.delete(wc));
  }

  stop(): void {
    this.stopping = true;
    this.child?.kill();
  }
}
