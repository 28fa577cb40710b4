/**
 * The real `loupe` CLI as a person and a script use it (issue 24 item 9): help for every command,
 * typo suggestions with exit 2, tables by default, the run id on its own line, `--json` lines.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';

const CLI = join(REPO_ROOT, 'src-main/cli/loupe.ts');
const loupe = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, LOUPE_DATA_DIR: '' } });

/** Every command the CLI had before the command table, plus import-benchmark (written out here, not read from the table). */
const COMMANDS = ['serve', 'run', 'resume', 'cancel', 'variants', 'sweep', 'kv-segmentation', 'kv-probes', 'kv-key-tokens', 'kv-compare', 'readout-summary', 'parts-logit-lens', 'info', 'models', 'datasets', 'runs', 'import-dataset', 'import-model', 'import-benchmark', 'worker'];

/** No stack trace: no `    at fn (file:line)` frames and no Node error class names. */
const noStack = (s: string) => {
  expect(s).not.toMatch(/^\s+at .+:\d+/m);
  expect(s).not.toMatch(/TypeError|ERR_PARSE_ARGS/);
};

describe('help', () => {
  it('loupe --help, -h, help and no command print the usage with every command and exit 0', () => {
    for (const args of [['--help'], ['-h'], ['help'], []]) {
      const r = loupe(...args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^usage: loupe <command> \[arguments\] \[flags\]$/m);
      for (const c of COMMANDS) expect(r.stdout, c).toMatch(new RegExp(`^  ${c} +\\S`, 'm'));
      expect(r.stdout).not.toMatch(/src-main|loupe\.ts/); // no pointing at a source file
      expect(r.stderr).toBe('');
    }
  });

  it('loupe run --help, run -h and help run print run’s usage, flags, allowed values and defaults', () => {
    const outs = [loupe('run', '--help'), loupe('run', '-h'), loupe('help', 'run'), loupe('--data-dir', '/nonexistent', 'run', '--help')];
    for (const r of outs) {
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(outs[0]!.stdout);
    }
    const help = outs[0]!.stdout;
    expect(help).toMatch(/^loupe run — /);
    expect(help).toMatch(/^usage: loupe run --model ID --dataset ID\|PATH \[--kind KIND\]/m);
    expect(help).toMatch(/^ {2}--kind KIND +what to compute/m);
    const flat = help.replace(/\s+/g, ' '); // wrapping is the terminal's business
    expect(flat).toContain('[one of encode-images, vlm-forward, readout; default encode-images]');
    expect(flat).toContain('--limit N at most N items (0 = all) [a whole number ≥ 0; default 0]');
    expect(help).toMatch(/^ {2}--data-dir DIR/m); // global flags too
    expect(help).toMatch(/exit status: 0 ok; 1 .*partial or failed; 2 a usage error/);
  });

  it('every command has help text with its usage line, and each flag a description', () => {
    for (const c of COMMANDS) {
      const r = loupe(c, '--help');
      expect(r.status, c).toBe(0);
      expect(r.stdout, c).toMatch(new RegExp(`^loupe ${c} — \\S.{10,}`));
      expect(r.stdout, c).toMatch(new RegExp(`^usage: loupe ${c}\\b`, 'm'));
      // A flag line is `  --name [VALUE]  description`: never a bare name.
      for (const line of r.stdout.split('\n').filter((l) => /^ {2}(-h, )?--/.test(l))) expect(line, `${c}: ${line}`).toMatch(/^ {2}\S.*\S {2,}\S|^ {2}\S+( \S+)?$/);
    }
  });

  it('import-benchmark’s help lists every format and what each expects', () => {
    const help = loupe('import-benchmark', '--help').stdout;
    expect(help).toMatch(/^usage: loupe import-benchmark PATH --format FORMAT \[--split SPLIT\] \[--subset A,B,…\] \[--limit N\]/m);
    for (const f of ['blink', 'cv-bench', 'spair-71k', 'davis-2017', 'refcoco', 'pascal-part', 'coco', 'imagenet-s']) expect(help).toMatch(new RegExp(`^ {2}${f}: \\S`, 'm'));
    expect(help).toContain('SPair-71k folder (PairAnnotation/');
  });
});

describe('mistakes are usage errors: a suggestion, exit 2, no stack trace, no engine', () => {
  const cases: [string[], RegExp][] = [
    [['rnu'], /^loupe: unknown command "rnu"; did you mean run\?$/m],
    [['help', 'swep'], /^loupe: no command "swep"; did you mean sweep\?$/m],
    [['kv-probe', '--run', 'x'], /did you mean kv-probes\?/],
    [['run', '--modle', MODEL_ID, '--dataset', 'count'], /^loupe: unknown flag --modle for `loupe run`; did you mean --model\?$/m],
    [['run', '--model', MODEL_ID, '--dataset', 'count', '--heads', '1'], /unknown flag --heads for `loupe run`; --heads is a flag of parts-logit-lens/],
    [['run', '--model', MODEL_ID, '--dataset', 'count', '--kind', 'readuot'], /^loupe: --kind must be one of encode-images, vlm-forward, readout, not "readuot"; did you mean readout\?$/m],
    [['run', '--model', MODEL_ID, '--dataset', 'count', '--limit', 'ten'], /^loupe: --limit must be a whole number ≥ 0, not "ten"$/m],
    [['run', '--model', MODEL_ID, '--dataset', 'count', '--limit'], /^loupe: --limit needs a whole number ≥ 0$/m],
    [['run', '--model', MODEL_ID, '--dataset', 'count', '--spec', '{taps'], /^loupe: --spec: .*JSON/m],
    [['run', '--model', MODEL_ID, '--dataset', 'count', '--variant', 'q5'], /^loupe: --variant: /m],
    [['run', '--dataset', 'count'], /^loupe: loupe run needs --model ID \(model id/m],
    [['kv-probes', '--run', 'r', '--alpha', '2'], /^loupe: --alpha must be a number ≥ 0 and ≤ 1, not "2"$/m],
    [['sweep', '--model', MODEL_ID, '--dataset', 'count', '--family', 'vision'], /--family must be one of vision-patches, vision-single, llm-text-image, llm-image-image, not "vision"/],
    [['import-benchmark', '--format', 'spair', 'x'], /--format must be one of .*, not "spair"; did you mean spair-71k\?/],
    [['import-benchmark', '--format', 'coco'], /^loupe: loupe import-benchmark needs PATH/m],
    [['runs', 'extra'], /^loupe: loupe runs takes no arguments, got extra "extra"$/m],
    [['runs', '--json=yes'], /^loupe: --json takes no value, got "yes"$/m],
    [['--provider', 'cdua', 'runs'], /--provider must be one of cuda, webgpu, dml, coreml, cpu, not "cdua"; did you mean cuda\?/],
  ];
  it.each(cases)('loupe %j', (args, message) => {
    const dataDir = join(tempDir(), 'data');
    const r = loupe(...args, '--data-dir', dataDir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^see: loupe (\S+ )?--help$/m);
    noStack(r.stderr);
    expect(r.stdout).toBe('');
    expect(existsSync(dataDir)).toBe(false); // refused before an engine touched the data folder
  });
});

describe('output for people and for scripts', () => {
  it('run prints the run id alone on stdout, progress and the outcome on stderr; runs shows an aligned table; --json parses', () => {
    const dataDir = tempDir();
    const run = loupe('run', '--model', MODEL_ID, '--dataset', 'colour-at-point', '--limit', '2', '--data-dir', dataDir, '--provider', 'cpu');
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split('\n').filter((l) => l.length > 0);
    expect(lines).toHaveLength(1);
    const id = lines[0]!;
    expect(id).toMatch(/^run-\d{4}-\d\d-\d\d-[0-9a-f]{8}$/);
    // Not a terminal: plain progress lines (no carriage returns), the last one complete.
    expect(run.stderr).not.toContain('\r');
    expect(run.stderr).toMatch(new RegExp(`^${id}: 2/2 \\(100%\\)$`, 'm'));
    expect(run.stderr).toMatch(/^done: 2 of 2 items — encode-images · micro-llava · world\/colour-at-point$/m);

    const table = loupe('runs', '--data-dir', dataDir, '--provider', 'cpu');
    expect(table.status).toBe(0);
    const [header, rule, row, ...rest] = table.stdout.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(header).toMatch(/^id +status +items +kind +model +dataset +created +name$/);
    expect(rule).toMatch(/^─+( {2}─+){7}$/);
    // Columns line up: each header starts where its value does.
    for (const [col, value] of [['status', 'done'], ['items', '2/2'], ['kind', 'encode-images'], ['model', MODEL_ID], ['dataset', 'colour-at-point']] as const) {
      const at = header!.indexOf(` ${col} `) + 1;
      expect(row!.slice(at, at + value.length), col).toBe(value);
    }
    expect(row!.startsWith(`${id} `)).toBe(true);

    const json = loupe('runs', '--json', '--data-dir', dataDir, '--provider', 'cpu');
    const runs = JSON.parse(json.stdout) as { id: string; status: string; done: number; total: number }[];
    expect(runs).toEqual([expect.objectContaining({ id, status: 'done', done: 2, total: 2 })]);
  });

  // script(1) gives the CLI a pseudo-terminal, as a person's shell would.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('on a terminal the progress is a bar redrawn in place', () => {
    const dataDir = tempDir();
    const cmd = `stty cols 120; "${process.execPath}" "${CLI}" run --model ${MODEL_ID} --dataset colour-at-point --limit 3 --data-dir "${dataDir}" --provider cpu`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stdout).toBe(0);
    const frames = r.stdout.split('\r\x1b[2K').slice(1);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(frames.at(-1)).toMatch(new RegExp(`^\\[█{40}\\] run-\\S+: 3/3 \\(100%\\)\\r?\\n`));
  });

  it('run --json prints only JSON lines: the events, then the result', () => {
    const dataDir = tempDir();
    const r = loupe('run', '--json', '--model', MODEL_ID, '--dataset', 'colour-at-point', '--limit', '2', '--data-dir', dataDir, '--provider', 'cpu');
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const progress = lines.filter((l) => l.event === 'job/progress');
    expect(progress.map((p) => p.done)).toEqual([1, 2]);
    expect(lines.at(-1)).toMatchObject({ result: { status: 'done', done: 2, total: 2, failed: 0 } });
    expect(r.stderr).toBe('');
  });

  it('models, datasets, variants and info print tables for people and JSON with --json', () => {
    const dataDir = tempDir();
    const models = loupe('models', '--data-dir', dataDir, '--provider', 'cpu');
    expect(models.stdout).toMatch(/^id +name +family +source +added\n─+/);
    expect(models.stdout).toMatch(new RegExp(`^${MODEL_ID} +${MODEL_ID} +llava +bundled `, 'm'));
    const datasets = loupe('datasets', '--data-dir', dataDir, '--provider', 'cpu');
    // The bundled colour-at-point dataset has 96 items (resources/datasets/colour-at-point/dataset.json).
    expect(datasets.stdout).toMatch(/^colour-at-point +world\/colour-at-point +colour-at-point +96 +bundled$/m);
    const variants = loupe('variants', MODEL_ID, '--data-dir', dataDir, '--provider', 'cpu');
    expect(variants.stdout).toMatch(/^decoder_model_merged +fp32 +default +[\d.]+ MiB +decoder_model_merged\.onnx$/m);
    const info = loupe('info', '--data-dir', dataDir, '--provider', 'cpu');
    expect(info.stdout).toContain(`data folder          ${dataDir}`);
    for (const c of ['models', 'datasets', 'info']) expect(() => JSON.parse(loupe(c, '--json', '--data-dir', dataDir, '--provider', 'cpu').stdout) as unknown).not.toThrow();
  });

  it('import-benchmark imports a COCO file: the dataset id on its own line, then what was imported', () => {
    const dataDir = tempDir();
    const coco = join(REPO_ROOT, 'tests/fixtures/benchmarks/coco/annotations/instances_val2017.json');
    const r = loupe('import-benchmark', '--format', 'coco', coco, '--limit', '3', '--data-dir', dataDir, '--provider', 'cpu');
    expect(r.status, r.stderr).toBe(0);
    const [id, summary] = r.stdout.trim().split('\n');
    expect(id).toMatch(/^instances-val2017-\S+$/);
    // The fixture's first 3 images (ids 139, 285, 632) carry 6 of its annotations (3 + 2 + 1), one label each.
    expect(summary).toMatch(/^imported 3 items, 6 labels as "instances_val2017"/);
    expect(r.stderr).toMatch(/^import coco: images: 3\/3 \(100%\)$/m);
    const listed = JSON.parse(loupe('datasets', '--json', '--data-dir', dataDir, '--provider', 'cpu').stdout) as { id: string; itemCount: number }[];
    expect(listed.find((d) => d.id === id)).toMatchObject({ itemCount: 3 });
  });

  it('an error at run time is one line naming the problem, exit 1, no stack trace', () => {
    const r = loupe('readout-summary', '--run', 'run-nope', '--data-dir', tempDir(), '--provider', 'cpu');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^loupe: not-found: .*run-nope/m);
    noStack(r.stderr);
  });
});
