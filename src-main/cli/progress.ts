/**
 * Progress for people, on stderr: a bar redrawn in place on a terminal, plain lines at most every
 * few seconds otherwise (logs, pipes, CI), each run's last state always written. Fed the engine's
 * events (`job/progress`, `import/progress`, `cluster/progress`); --json mode prints the events instead.
 */
import { duration } from './text-table.ts';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

interface State {
  label: string;
  done: number;
  failed: number;
  total: number | null;
  etaMs: number | null;
  lastPrinted: number;
  finished: boolean;
}

export class ProgressReporter {
  private readonly states = new Map<string, State>();
  private readonly labels = new Map<string, string>();
  /** The key whose bar is on the terminal's current line (TTY mode). */
  private live: string | null = null;

  private readonly stream: ProgressStream;
  private readonly intervalMs: number;
  private readonly now: () => number;
  constructor(stream: ProgressStream, intervalMs = 3000, now: () => number = Date.now) {
    this.stream = stream;
    this.intervalMs = intervalMs;
    this.now = now;
  }

  private get tty(): boolean {
    return this.stream.isTTY === true;
  }

  /** How a run is named in progress lines (a sweep's `intact` / ablation label); the run id otherwise. */
  label(key: string, text: string): void {
    this.labels.set(key, text);
  }

  onEvent(name: string, payload: unknown): void {
    const p = payload as Record<string, unknown>;
    if (name === 'job/progress') this.update(String(p.runId), Number(p.done), Number(p.failed), Number(p.total), (p.etaMs as number | null) ?? null);
    else if (name === 'cluster/progress') this.update(String(p.runId), Number(p.runDone), Number(p.runFailed), Number(p.runTotal), (p.etaMs as number | null) ?? null);
    else if (name === 'import/progress') this.update(`import ${String(p.format)}: ${String(p.phase)}`, Number(p.done), 0, (p.total as number | null) ?? null, null);
  }

  /** A line for people (a warning, a finished run), written without tearing the bar. */
  say(line: string): void {
    if (this.tty && this.live) this.stream.write('\r\x1b[2K');
    this.stream.write(`${line}\n`);
    if (this.tty && this.live) this.draw(this.states.get(this.live)!);
  }

  update(key: string, done: number, failed: number, total: number | null, etaMs: number | null): void {
    const s = this.states.get(key) ?? { label: this.labels.get(key) ?? key, done: 0, failed: 0, total, etaMs: null, lastPrinted: -Infinity, finished: false };
    Object.assign(s, { done, failed, total, etaMs });
    this.states.set(key, s);
    const complete = total !== null && done + failed >= total;
    if (this.tty) {
      if (this.live !== key && this.live !== null) this.stream.write('\n'); // keep the previous run's last state on screen
      this.live = key;
      this.draw(s);
      if (complete) {
        this.stream.write('\n');
        this.live = null;
        s.finished = true;
      }
      return;
    }
    const t = this.now();
    if (complete && s.finished) return;
    if (complete || t - s.lastPrinted >= this.intervalMs) {
      s.lastPrinted = t;
      s.finished = complete;
      this.stream.write(`${this.text(s)}\n`);
    }
  }

  /** Ends the bar line (before the result is printed). */
  finish(): void {
    if (this.tty && this.live) this.stream.write('\n');
    this.live = null;
  }

  private text(s: State): string {
    const counts = s.total === null ? `${s.done}` : `${s.done + s.failed}/${s.total}`;
    const extra = [s.failed > 0 && `${s.failed} failed`, s.etaMs !== null && s.etaMs > 0 && s.total !== null && s.done + s.failed < s.total && `ETA ${duration(s.etaMs)}`].filter(Boolean).join(', ');
    return `${s.label}: ${counts}${s.total ? ` (${Math.floor(((s.done + s.failed) / s.total) * 100)}%)` : ''}${extra ? ` · ${extra}` : ''}`;
  }

  private draw(s: State): void {
    const cols = this.stream.columns || 100; // a pty without a size reports 0
    const width = Math.max(10, Math.min(40, cols - 60));
    const frac = s.total ? Math.min(1, (s.done + s.failed) / s.total) : 0;
    const filled = Math.round(frac * width);
    const bar = s.total === null ? '' : `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}] `;
    const line = `${bar}${this.text(s)}`;
    this.stream.write(`\r\x1b[2K${line.slice(0, Math.max(20, cols - 1))}`);
  }
}
