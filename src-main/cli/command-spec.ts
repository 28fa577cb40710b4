/**
 * The shape of the CLI's command table (`commands.ts`): one entry per command with everything
 * parsing, `--help` and the usage line are generated from, and the handler that runs it.
 */
import type { CliContext } from './context.ts';

export type FlagType = 'string' | 'boolean' | 'integer' | 'number' | 'list';
export type FlagValue = string | boolean | number | string[];

export interface FlagSpec {
  type: FlagType;
  /** One line for `--help`. */
  description: string;
  /** What the value looks like in usage lines: ID, N, PATH … (not for booleans). */
  placeholder?: string;
  /** Applied when the flag is absent; shown in `--help`. */
  default?: FlagValue;
  /** The allowed values (for `string`, and for every element of a `list`); anything else is a usage error. */
  choices?: readonly string[];
  /** Bounds for `integer` / `number`. */
  min?: number;
  max?: number;
  /** Missing → usage error naming it. */
  required?: boolean;
  /** Extra check of a `string` or `list` flag's raw value: null if fine, else why not (the parser names the flag). */
  check?: (raw: string) => string | null;
}

export interface ArgSpec {
  /** As shown in usage: PATH, MODEL … */
  name: string;
  description: string;
  required?: boolean;
}

export type Flags = Record<string, FlagSpec>;

export interface CommandSpec {
  name: string;
  /** One line, shown in `loupe --help` and at the top of the command's help. */
  summary: string;
  /** Where the command is listed in `loupe --help`. */
  group: 'Run' | 'Analyse' | 'Library' | 'Serve' | 'Cluster';
  args?: readonly ArgSpec[];
  flags: Flags;
  /** Paragraphs after the flags in the command's help (formats, families, examples). */
  details?: readonly string[];
  /** Whether the handler needs an engine on the data folder (all but `help`, and `worker`, which starts its own). */
  engine?: boolean;
  handler: (ctx: CliContext) => Promise<void>;
}

/** A usage error: unknown command or flag, a missing or malformed value. Exit status 2, no stack trace. */
export class UsageError extends Error {
  /** The command whose help the message points at, if any. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** The parsed command line: the command, its positionals and every flag (defaults applied), read by type. */
export class ParsedArgs {
  readonly command: string;
  readonly positionals: readonly string[];
  private readonly values: ReadonlyMap<string, FlagValue>;
  constructor(command: string, positionals: readonly string[], values: ReadonlyMap<string, FlagValue>) {
    this.command = command;
    this.positionals = positionals;
    this.values = values;
  }

  has(flag: string): boolean {
    return this.values.has(flag);
  }

  str(flag: string): string | undefined {
    const v = this.values.get(flag);
    if (v !== undefined && typeof v !== 'string') throw new Error(`--${flag} is not a string flag`);
    return v;
  }

  /** A flag that the table marks required (the parser has already refused its absence). */
  need(flag: string): string {
    const v = this.str(flag);
    if (v === undefined) throw new UsageError(`--${flag} is required`, this.command);
    return v;
  }

  num(flag: string): number | undefined {
    const v = this.values.get(flag);
    if (v !== undefined && typeof v !== 'number') throw new Error(`--${flag} is not a numeric flag`);
    return v;
  }

  bool(flag: string): boolean {
    const v = this.values.get(flag);
    if (v !== undefined && typeof v !== 'boolean') throw new Error(`--${flag} is not a boolean flag`);
    return v ?? false;
  }

  list(flag: string): string[] | undefined {
    const v = this.values.get(flag);
    if (v !== undefined && !Array.isArray(v)) throw new Error(`--${flag} is not a list flag`);
    return v;
  }

  /** Every string-valued flag as the raw strings the cluster and serve helpers take (their own checks apply). */
  raw(): Record<string, string | undefined> {
    const out: Record<string, string | undefined> = {};
    for (const [k, v] of this.values) out[k] = Array.isArray(v) ? v.join(',') : typeof v === 'boolean' ? undefined : String(v);
    return out;
  }
}
