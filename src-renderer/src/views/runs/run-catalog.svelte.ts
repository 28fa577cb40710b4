/**
 * The runs with their tags and notes, kept current from anywhere: `job/state` events for this
 * engine's own runs (immediate), and a poll of `runs/version` (one SQL aggregate) for what no
 * event announces — another window's rename/delete, runs merged from a cluster store, or
 * anything else writing the database. The poll stops while the page is hidden.
 */
import type { RunEntry } from '../../../../src-shared/contract/run-methods.ts';
import type { Workbench } from '../../lib/workbench.svelte.ts';

export const POLL_MS = 2000;

export class RunCatalog {
  entries = $state<RunEntry[]>([]);
  loaded = $state(false);
  private version = '';
  private timer: ReturnType<typeof setInterval> | null = null;
  private readonly wb: Workbench;
  private offState: (() => void) | null = null;

  constructor(wb: Workbench) {
    this.wb = wb;
  }

  start(): () => void {
    void this.reload();
    this.offState = this.wb.client.on('job/state', (run) => {
      const i = this.entries.findIndex((e) => e.run.id === run.id);
      if (i >= 0) this.entries[i] = { ...this.entries[i]!, run };
      else void this.reload();
    });
    this.timer = setInterval(() => {
      if (document.visibilityState === 'visible') void this.poll();
    }, POLL_MS);
    return () => this.stop();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.offState?.();
  }

  async poll(): Promise<void> {
    try {
      const { version } = await this.wb.client.call('runs/version', {});
      if (version !== this.version) await this.reload();
    } catch {
      // A lost connection is reported by the status bar; the next poll tries again.
    }
  }

  async reload(): Promise<void> {
    const [{ version }, entries] = await Promise.all([this.wb.client.call('runs/version', {}), this.wb.client.call('runs/catalog', {})]);
    this.version = version;
    this.entries = entries;
    // The rest of the workbench (Experiments' queue, Flow's run picker) reads wb.runs.
    this.wb.runs = entries.map((e) => e.run);
    this.loaded = true;
  }

  replace(entry: RunEntry): void {
    const i = this.entries.findIndex((e) => e.run.id === entry.run.id);
    if (i >= 0) this.entries[i] = entry;
  }
}
