/**
 * Runs the engine in an Electron utility process and keeps it alive: on a crash it is
 * restarted (with backoff) and every window is told, so the UI can reconnect; runs that
 * were in flight resume from their ledger on the new engine's start.
 */
import { MessageChannelMain, type UtilityProcess, type WebContents, utilityProcess } from 'electron';
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
    child.on('exit', (code) => {
      this.child = null;
      if (this.stopping) return;
      this.restarts++;
      const reason = `engine exited with code ${code}`;
      const delay = Math.min(30_000, 500 * 2 ** Math.min(this.restarts, 6));
      setTimeout(() => {
        this.start();
        for (const wc of this.windows) if (!wc.isDestroyed()) wc.send(BRIDGE_CHANNELS.restarted, { reason, restarts: this.restarts });
      }, delay);
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
