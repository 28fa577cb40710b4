/**
 * Watches one Redis connection and says, once per change, whether the queue is reachable:
 * "unreachable (connect ECONNREFUSED 127.0.0.1:6379); retrying every 2 s" when it goes, "reachable
 * again" when it returns. BullMQ's own connections reconnect by themselves (ioredis); this one
 * exists so the people watching (worker log, desktop event, CLI) hear about it, not a stack of retries.
 */
import { Redis } from 'ioredis';
import { type QueueConnection, ioredisOptions } from './queue-url.ts';

export interface ConnectionState {
  queue: string;
  connected: boolean;
  message: string;
}

export class ConnectionWatch {
  readonly client: Redis;
  private state: ConnectionState;
  /** The server's or socket's last word (WRONGPASS, ECONNREFUSED): ioredis's own rejection is often just "Connection is closed". */
  private lastError: string | null = null;
  private readonly onChange: (s: ConnectionState) => void;

  constructor(conn: QueueConnection, onChange: (s: ConnectionState) => void) {
    this.onChange = onChange;
    this.state = { queue: conn.display, connected: false, message: `connecting to ${conn.display}` };
    this.client = new Redis({ ...ioredisOptions(conn), lazyConnect: true, connectionName: 'loupe-watch' });
    this.client.on('ready', () => this.set(true, `queue ${conn.display} reachable`));
    this.client.on('error', (e: Error) => {
      this.lastError = describe(e);
      this.set(false, `queue ${conn.display} unreachable (${this.lastError}); retrying every 2 s`);
    });
    this.client.on('end', () => this.set(false, `queue ${conn.display} connection closed`));
  }

  get current(): ConnectionState {
    return { ...this.state };
  }

  /** Connects, or fails within `timeoutMs` with what went wrong (a submit must not hang on a dead queue). */
  async connect(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(this.state.connected ? 'timed out' : this.state.message)), timeoutMs)));
    try {
      await Promise.race([this.client.connect().catch((e: Error) => Promise.reject(new Error(this.lastError ?? describe(e)))), timeout]);
      await Promise.race([this.client.ping(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private set(connected: boolean, message: string): void {
    const changed = connected !== this.state.connected || (!connected && message !== this.state.message && this.state.message.startsWith('connecting'));
    this.state = { ...this.state, connected, message };
    if (changed) this.onChange(this.current);
  }

  async close(): Promise<void> {
    this.client.removeAllListeners('end');
    this.client.disconnect();
  }
}

/** "connect ECONNREFUSED 127.0.0.1:6379", "WRONGPASS invalid username-password pair", … */
export function describe(e: Error): string {
  const code = (e as { code?: string }).code;
  return e.message || code || String(e);
}
