/**
 * Parses `loupe <command> [args] [flags]` against the command table: flags by the types the table
 * gives them (`--flag value` or `--flag=value`), defaults applied, values checked against their
 * type, bounds and allowed values. Every mistake is a UsageError that names the flag and what it
 * takes, with a "did you mean" for unknown commands and flags.
 */
import { type CommandSpec, type FlagSpec, type FlagValue, type Flags, ParsedArgs, UsageError } from './command-spec.ts';
import { didYouMean } from './suggest.ts';

export type ParseOutcome = { kind: 'help'; command?: string } | { kind: 'command'; spec: CommandSpec; args: ParsedArgs };

const isHelp = (t: string) => t === '--help' || t === '-h';

/** What a flag takes, for messages: `a whole number ≥ 0`, `one of a, b`, … */
export function describeValue(spec: FlagSpec): string {
  const bounds = [spec.min !== undefined && `≥ ${spec.min}`, spec.max !== undefined && `≤ ${spec.max}`].filter(Boolean).join(' and ');
  switch (spec.type) {
    case 'integer':
      return `a whole number${bounds ? ` ${bounds}` : ''}`;
    case 'number':
      return `a number${bounds ? ` ${bounds}` : ''}`;
    case 'list':
      return spec.choices ? `a comma-separated list of ${spec.choices.join(', ')}` : 'a comma-separated list';
    case 'boolean':
      return 'no value';
    case 'string':
      return spec.choices ? `one of ${spec.choices.join(', ')}` : `a value (${spec.placeholder ?? 'text'})`;
  }
}

function convert(command: string, name: string, spec: FlagSpec, raw: string): FlagValue {
  const bad = (extra = '') => new UsageError(`--${name} must be ${describeValue(spec)}, not "${raw}"${extra}`, command);
  const inBounds = (n: number) => (spec.min === undefined || n >= spec.min) && (spec.max === undefined || n <= spec.max);
  switch (spec.type) {
    case 'integer': {
      const n = Number(raw);
      if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(n) || !inBounds(n)) throw bad();
      return n;
    }
    case 'number': {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || !inBounds(n)) throw bad();
      return n;
    }
    case 'list': {
      const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
      if (items.length === 0) throw bad();
      if (spec.choices) for (const it of items) if (!spec.choices.includes(it)) throw new UsageError(`--${name}: "${it}" is not ${describeValue(spec)}${didYouMean(it, spec.choices)}`, command);
      const why = spec.check?.(raw);
      if (why) throw new UsageError(`--${name}: ${why}`, command);
      return items;
    }
    case 'boolean':
      throw new UsageError(`--${name} takes no value, got "${raw}"`, command);
    case 'string': {
      if (spec.choices && !spec.choices.includes(raw)) throw bad(didYouMean(raw, spec.choices));
      const why = spec.check?.(raw);
      if (why) throw new UsageError(`--${name}: ${why}`, command);
      return raw;
    }
  }
}

/** `table` must give each flag name one type across commands (checked here: the command is found before its flags are known). */
export function parseCommandLine(argv: readonly string[], table: readonly CommandSpec[], globals: Flags): ParseOutcome {
  const byName = new Map(table.map((c) => [c.name, c]));
  const anyFlag = new Map<string, FlagSpec>(Object.entries(globals));
  for (const c of table) for (const [n, f] of Object.entries(c.flags)) if (!anyFlag.has(n)) anyFlag.set(n, f);

  // Find the command: the first token that is neither a flag nor a flag's value.
  let at = -1;
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (isHelp(t)) continue;
    if (t.startsWith('-')) {
      const f = anyFlag.get(t.replace(/^--?/, '').split('=')[0]!);
      if (f && f.type !== 'boolean' && !t.includes('=')) i++;
      continue;
    }
    at = i;
    break;
  }
  if (at < 0) {
    const stray = argv.find((t) => t.startsWith('-') && !isHelp(t) && !anyFlag.has(t.replace(/^--?/, '').split('=')[0]!));
    if (stray) throw new UsageError(`unknown flag ${stray} and no command${didYouMean(stray.replace(/^--?/, ''), anyFlag.keys(), (c) => `--${c}`)}`);
    return { kind: 'help' };
  }
  const name = argv[at]!;
  const rest = [...argv.slice(0, at), ...argv.slice(at + 1)];
  if (name === 'help') {
    const topic = rest.find((t) => !t.startsWith('-'));
    if (topic !== undefined && !byName.has(topic)) throw new UsageError(`no command "${topic}"${didYouMean(topic, byName.keys())}`);
    return topic === undefined ? { kind: 'help' } : { kind: 'help', command: topic };
  }
  const spec = byName.get(name);
  if (!spec) throw new UsageError(`unknown command "${name}"${didYouMean(name, byName.keys())}`);
  if (rest.some(isHelp)) return { kind: 'help', command: name };

  const flags: Flags = { ...globals, ...spec.flags };
  const values = new Map<string, FlagValue>();
  const positionals: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const t = rest[i]!;
    if (t === '--') {
      positionals.push(...rest.slice(i + 1));
      break;
    }
    if (!t.startsWith('-') || t === '-') {
      positionals.push(t);
      continue;
    }
    const eq = t.indexOf('=');
    const flag = (eq < 0 ? t : t.slice(0, eq)).replace(/^--?/, '');
    const f = flags[flag];
    if (!f || !t.startsWith('--')) {
      const elsewhere = table.filter((c) => c !== spec && flag in c.flags).map((c) => c.name);
      const hint = elsewhere.length > 0 && !f ? `; --${flag} is a flag of ${elsewhere.join(', ')}` : didYouMean(flag, Object.keys(flags), (c) => `--${c}`);
      throw new UsageError(`unknown flag ${eq < 0 ? t : t.slice(0, eq)} for \`loupe ${name}\`${hint}`, name);
    }
    if (f.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${flag} takes no value, got "${t.slice(eq + 1)}"`, name);
      values.set(flag, true);
      continue;
    }
    let raw: string | undefined;
    if (eq >= 0) raw = t.slice(eq + 1);
    else {
      raw = rest[i + 1];
      // A missing value, or the next flag where the value should be, is a mistake, not a value.
      if (raw === undefined || (raw.startsWith('--') && raw.slice(2).split('=')[0]! in flags)) throw new UsageError(`--${flag} needs ${describeValue(f)}`, name);
      i++;
    }
    values.set(flag, convert(name, flag, f, raw));
  }

  for (const [n, f] of Object.entries(flags)) {
    if (values.has(n)) continue;
    if (f.required) throw new UsageError(`loupe ${name} needs --${n}${f.placeholder ? ` ${f.placeholder}` : ''} (${f.description})`, name);
    if (f.default !== undefined) values.set(n, f.default);
  }
  const args = spec.args ?? [];
  if (positionals.length > args.length) {
    const extra = positionals.slice(args.length);
    throw new UsageError(`loupe ${name} ${args.length === 0 ? 'takes no arguments' : `takes ${args.map((a) => a.name).join(' ')}`}, got extra ${extra.map((e) => `"${e}"`).join(' ')}`, name);
  }
  const missing = args.slice(positionals.length).find((a) => a.required);
  if (missing) throw new UsageError(`loupe ${name} needs ${missing.name} (${missing.description})`, name);
  return { kind: 'command', spec, args: new ParsedArgs(name, positionals, values) };
}
