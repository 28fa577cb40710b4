/**
 * Undo/redo as a stack of commands with their inverses. Every command is already saved
 * (autosave) when pushed; undo and redo run the inverse/forward actions against the engine,
 * so the stored labels always equal what the user sees.
 */
export interface Command {
  label: string;
  redo(): Promise<void>;
  undo(): Promise<void>;
}

export class History {
  private readonly done: Command[] = [];
  private readonly undone: Command[] = [];
  private readonly limit: number;

  constructor(limit = 200) {
    this.limit = limit;
  }

  /** Records a command that has just been executed. */
  push(c: Command): void {
    this.done.push(c);
    if (this.done.length > this.limit) this.done.shift();
    this.undone.length = 0;
  }

  get canUndo(): boolean {
    return this.done.length > 0;
  }

  get canRedo(): boolean {
    return this.undone.length > 0;
  }

  async undo(): Promise<string | null> {
    const c = this.done.pop();
    if (!c) return null;
    await c.undo();
    this.undone.push(c);
    return c.label;
  }

  async redo(): Promise<string | null> {
    const c = this.undone.pop();
    if (!c) return null;
    await c.redo();
    this.done.push(c);
    return c.label;
  }

  clear(): void {
    this.done.length = 0;
    this.undone.length = 0;
  }
}
