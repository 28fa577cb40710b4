/**
 * The CLI's command table and its parts, in process (no engine): the parser's assumptions about
 * the table, edit distance on published cases, aligned tables and the progress bar vs plain lines.
 */
import { describe, expect, it } from 'vitest';
import { CLUSTER_OPTIONS } from '../../src-main/cluster/cluster-commands.ts';
import { COMMANDS, GLOBAL_FLAGS } from '../../src-main/cli/commands.ts';
import { UsageError } from '../../src-main/cli/command-spec.ts';
import { parseCommandLine } from '../../src-main/cli/parse-args.ts';
import { ProgressReporter } from '../../src-main/cli/progress.ts';
import { editDistance, suggest } from '../../src-main/cli/suggest.ts';
import { table } from '../../src-main/cli/text-table.ts';

const parse = (...argv: string[]) => parseCommandLine(argv, COMMANDS, GLOBAL_FLAGS);
const parsed = (...argv: string[]) => {
  const r = parse(...argv);
  if (r.kind !== 'command') throw new Error(`expected a command, got ${JSON.stringify(r)}`);
  return r.args;
};

describe('the command table', () => {
  it('gives each flag name one type everywhere (the command is found before its flags are known)', () => {
    const types = new Map<string, string>(Object.entries(GLOBAL_FLAGS).map(([n, f]) => [n, f.type]));
    for (const c of COMMANDS)
      for (const [n, f] of Object.entries(c.flags)) {
        expect(n in GLOBAL_FLAGS, `${c.name} --${n} shadows a global flag`).toBe(false);
        expect(types.get(n) ?? f.type, `${c.name} --${n}`).toBe(f.type);
        types.set(n, f.type);
        expect(f.description.length, `${c.name} --${n}`).toBeGreaterThan(10);
      }
    expect(new Set(COMMANDS.map((c) => c.name)).size).toBe(COMMANDS.length);
  });

  it('offers every cluster option the cluster code reads on `loupe worker`', () => {
    const worker = COMMANDS.find((c) => c.name === 'worker')!;
    for (const o of Object.keys(CLUSTER_OPTIONS).filter((o) => o !== 'shard-items')) expect(Object.keys(worker.flags)).toContain(o);
    for (const c of ['run', 'sweep']) for (const o of ['queue', 'store', 'shard-items']) expect(Object.keys(COMMANDS.find((x) => x.name === c)!.flags)).toContain(o);
  });
});

describe('parsing', () => {
  it('reads --flag value and --flag=value, applies defaults, converts types, takes global flags before the command', () => {
    const a = parsed('--data-dir', '/d', 'run', '--model=m', '--dataset', 'ds', '--limit', '7', '--json');
    expect([a.command, a.str('data-dir'), a.str('model'), a.str('dataset'), a.num('limit'), a.bool('json'), a.str('kind'), a.str('spec')]).toEqual(['run', '/d', 'm', 'ds', 7, true, 'encode-images', '{}']);
    const p = parsed('parts-logit-lens', '--run', 'r', '--ablated', 'a, b,,c', '--heads', '0,2');
    expect([p.list('ablated'), p.list('heads')]).toEqual([['a', 'b', 'c'], ['0', '2']]);
    expect(parsed('import-model', '--', '--odd-folder-name').positionals).toEqual(['--odd-folder-name']);
  });

  it('answers help wherever it is asked', () => {
    expect(parse()).toEqual({ kind: 'help' });
    expect(parse('-h')).toEqual({ kind: 'help' });
    expect(parse('help', 'sweep')).toEqual({ kind: 'help', command: 'sweep' });
    expect(parse('sweep', '--model', 'x', '-h')).toEqual({ kind: 'help', command: 'sweep' });
  });

  it('refuses values outside the bounds and choices, naming the flag', () => {
    const msg = (...argv: string[]) => {
      try {
        parse(...argv);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(msg('run', '--model', 'm', '--dataset', 'd', '--limit', '-1')).toBe('--limit must be a whole number ≥ 0, not "-1"');
    expect(msg('run', '--model', 'm', '--dataset', 'd', '--limit', '2.5')).toBe('--limit must be a whole number ≥ 0, not "2.5"');
    expect(msg('kv-probes', '--run', 'r', '--k', '65')).toBe('--k must be a whole number ≥ 1 and ≤ 64, not "65"');
    expect(msg('parts-logit-lens', '--run', 'r', '--heads', '1,x')).toBe('--heads: must be head indices (0,2,…), not "1,x"');
    expect(msg('run', '--model', '--dataset', 'd')).toBe('--model needs a value (ID)');
    expect(msg('worker', '--queue', 'redis://h:1', '--concurrency', '0')).toBe('--concurrency must be a whole number ≥ 1, not "0"');
  });
});

describe('suggestions', () => {
  it('counts edits as the optimal-string-alignment distance does', () => {
    // Published cases: kitten→sitting 3 (Levenshtein's example); a swap is one edit; OSA gives ca→abc 3 (Damerau proper: 2).
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('rnu', 'run')).toBe(1);
    expect(editDistance('ca', 'abc')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('same', 'same')).toBe(0);
  });

  it('suggests near names first, then names the word starts', () => {
    const names = COMMANDS.map((c) => c.name);
    expect(suggest('rnu', names)).toEqual(['run']);
    expect(suggest('runs', names)[0]).toBe('runs');
    expect(suggest('kv', names)).toEqual(['kv-segmentation', 'kv-probes', 'kv-key-tokens']);
    expect(suggest('zzzzzz', names)).toEqual([]);
  });
});

describe('output', () => {
  it('aligns columns: text left, numbers right, missing values as —', () => {
    expect(table(['name', 'n', 'x'], [['a', 1, 0.5], ['long name', 12, null]])).toBe(['name        n      x', '─────────  ──  ─────', 'a           1  0.500', 'long name  12      —'].join('\n'));
  });

  it('draws a bar in place on a terminal and ends its line when the run completes', () => {
    let out = '';
    const p = new ProgressReporter({ write: (s: string) => (out += s), isTTY: true, columns: 80 });
    p.update('run-1', 1, 0, 4, 3000);
    p.update('run-1', 4, 0, 4, null);
    expect(out).toBe(`\r\x1b[2K[${'█'.repeat(5)}${'░'.repeat(15)}] run-1: 1/4 (25%) · ETA 3.0 s\r\x1b[2K[${'█'.repeat(20)}] run-1: 4/4 (100%)\n`);
  });

  it('writes plain lines at most every interval otherwise, and always the last state', () => {
    let out = '';
    let now = 0;
    const p = new ProgressReporter({ write: (s: string) => (out += s) }, 3000, () => now);
    for (let done = 1; done <= 10; done++) {
      now = done * 1000;
      p.update('r', done, 0, 10, null);
    }
    expect(out.split('\n').filter(Boolean)).toEqual(['r: 1/10 (10%)', 'r: 4/10 (40%)', 'r: 7/10 (70%)', 'r: 10/10 (100%)']);
  });
});
