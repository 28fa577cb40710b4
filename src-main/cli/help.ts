/** `loupe --help` and `loupe <command> --help`, generated from the command table (nothing written by hand here but the frame). */
import type { CommandSpec, FlagSpec, Flags } from './command-spec.ts';
import { describeValue } from './parse-args.ts';

const GROUPS: CommandSpec['group'][] = ['Run', 'Analyse', 'Library', 'Serve', 'Cluster'];

/** Wraps `text` to `width` columns, later lines indented by `indent` spaces. */
export function wrap(text: string, width: number, indent: number): string {
  const words = text.split(/\s+/).filter((w) => w.length > 0);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width - indent) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** The value's name in usage: its placeholder, short choice lists spelled out, else the flag's name in capitals. */
function placeholder(name: string, f: FlagSpec): string {
  if (f.placeholder) return f.placeholder;
  if (f.choices && f.choices.join('|').length <= 16) return f.choices.join('|');
  return name.toUpperCase().replace(/-/g, '_');
}

const flagLabel = (name: string, f: FlagSpec) => `${name === 'help' ? '-h, ' : ''}--${name}${f.type === 'boolean' ? '' : ` ${placeholder(name, f)}`}`;

/** The usage line: `loupe run --model ID --dataset ID|PATH [--kind …] …`. */
export function usageLine(c: CommandSpec): string {
  const args = (c.args ?? []).map((a) => (a.required ? a.name : `[${a.name}]`));
  const flags = Object.entries(c.flags).map(([n, f]) => (f.required ? flagLabel(n, f) : `[${flagLabel(n, f)}]`));
  return ['loupe', c.name, ...args, ...flags].join(' ');
}

function flagRows(flags: Flags, width: number): string[] {
  const labels = Object.entries(flags).map(([n, f]) => [flagLabel(n, f), f] as const);
  const col = Math.min(34, Math.max(...labels.map(([l]) => l.length)) + 2);
  return labels.map(([label, f]) => {
    // What the parser enforces, on a line of its own under the description.
    const notes = [
      f.required && 'required',
      f.type === 'string' && f.choices && `one of ${f.choices.join(', ')}`,
      f.type === 'list' && describeValue(f),
      (f.type === 'integer' || f.type === 'number') && describeValue(f),
      f.default !== undefined && f.default !== false && `default ${Array.isArray(f.default) ? f.default.join(',') : String(f.default)}`,
    ].filter((x): x is string => typeof x === 'string' && x.length > 0);
    const head = `  ${label}`;
    const indent = ' '.repeat(col + 2);
    const pad = head.length + 2 > col + 2 ? `\n${indent}` : ' '.repeat(col + 2 - head.length);
    return `${head}${pad}${wrap(f.description, width, col + 2)}${notes.length > 0 ? `\n${indent}${wrap(`[${notes.join('; ')}]`, width, col + 2)}` : ''}`;
  });
}

export function commandHelp(c: CommandSpec, globals: Flags, width = 100): string {
  const out = [`loupe ${c.name} — ${c.summary}`, '', `usage: ${wrap(usageLine(c), width, 7)}`];
  if (c.args && c.args.length > 0) {
    out.push('', 'arguments:');
    const col = Math.max(...c.args.map((a) => a.name.length)) + 4;
    for (const a of c.args) out.push(`  ${a.name.padEnd(col - 2)}${wrap(`${a.description}${a.required ? ' (required)' : ''}`, width, col)}`);
  }
  if (Object.keys(c.flags).length > 0) out.push('', 'flags:', ...flagRows(c.flags, width));
  // A detail keeps its own line breaks (lists); each line wraps under its own indent.
  for (const d of c.details ?? []) out.push('', d.split('\n').map((l) => ' '.repeat(l.length - l.trimStart().length) + wrap(l, width, l.length - l.trimStart().length > 0 ? l.length - l.trimStart().length + 2 : 0)).join('\n'));
  out.push('', 'global flags:', ...flagRows(globals, width));
  out.push('', 'exit status: 0 ok; 1 an error, or a run that ended partial or failed; 2 a usage error.');
  return `${out.join('\n')}\n`;
}

export function generalHelp(table: readonly CommandSpec[], globals: Flags, width = 100): string {
  const col = Math.max(...table.map((c) => c.name.length)) + 4;
  const out = ['loupe — headless Loupe: the engine of the workbench, from a shell', '', 'usage: loupe <command> [arguments] [flags]', '       loupe help <command>   or   loupe <command> --help'];
  for (const g of GROUPS) {
    const cs = table.filter((c) => c.group === g);
    if (cs.length === 0) continue;
    out.push('', `${g}:`);
    for (const c of cs) out.push(`  ${c.name.padEnd(col - 2)}${wrap(c.summary, width, col)}`);
  }
  out.push('', 'global flags (every command):', ...flagRows(globals, width));
  out.push('', 'Output is for people (tables, a progress bar on a terminal); --json prints JSON lines for scripts.');
  out.push('exit status: 0 ok; 1 an error, or a run that ended partial or failed; 2 a usage error.');
  return `${out.join('\n')}\n`;
}
