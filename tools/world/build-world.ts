/**
 * Writes synthetic-world probe datasets to disk.
 *
 *   node tools/world/build-world.ts [--out DIR] [--seed N] [--train N] [--test N] [--tasks a,b]
 *   node tools/world/build-world.ts --train-corpus [DIR] [--seed N] [--train N] [--test N] [--no-png] [--referring-letters K]
 *
 * The first form writes the small shipped probe sets (default resources/datasets, test split);
 * the second a large corpus for tools/micro-vlm with raw uint8 arrays beside the dataset files.
 * Layout and formats: tools/world/README.md.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DatasetManifest, type DatasetItem } from '../../src-shared/dataset/format.ts';
import { buildManifest, generateItem, toDatasetItem, type GeneratedItem, type Split } from '../../src-shared/world/dataset.ts';
import { IMAGE_SIZE } from '../../src-shared/world/scene.ts';
import { taskByName, TASKS } from '../../src-shared/world/tasks/index.ts';
import { referringWithLetters } from '../../src-shared/world/tasks/referring.ts';
import type { TaskDef } from '../../src-shared/world/tasks/types.ts';
import { CHOICE_LETTERS, VOCABULARY } from '../../src-shared/world/vocabulary.ts';
import { encodeMaskPng, encodeRgbPng } from './png.ts';

interface Options {
  out: string;
  seed: number;
  train: number;
  test: number;
  tasks: TaskDef[];
  corpus: boolean;
  png: boolean;
  /** `--referring-letters K`, kept so the recorded command rebuilds the same corpus. */
  referringLetters?: number;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      seed: { type: 'string' },
      train: { type: 'string' },
      test: { type: 'string' },
      tasks: { type: 'string' },
      'train-corpus': { type: 'boolean' },
      'no-png': { type: 'boolean' },
      'referring-letters': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  // `--train-corpus DIR`: parseArgs has no optional-value flags, so take the next bare word.
  const corpus = values['train-corpus'] === true;
  const corpusDir = corpus ? argv[argv.indexOf('--train-corpus') + 1] : undefined;
  const num = (v: string | undefined, d: number): number => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${v}`);
    return n;
  };
  const referringLetters = values['referring-letters'] === undefined ? undefined : num(values['referring-letters'], 4);
  return {
    out: values.out ?? (corpus ? (corpusDir && !corpusDir.startsWith('--') ? corpusDir : '.cache/world-train') : 'resources/datasets'),
    seed: num(values.seed, corpus ? 7 : 1),
    train: num(values.train, corpus ? 5000 : 0),
    test: num(values.test, corpus ? 500 : 96),
    tasks: (values.tasks ? values.tasks.split(',').map(taskByName) : [...TASKS]).map((t) =>
      // A training curriculum only (tools/micro-vlm): fewer lettered objects in referring scenes.
      t.name === 'referring' && referringLetters !== undefined ? referringWithLetters(referringLetters) : t,
    ),
    corpus,
    png: values['no-png'] !== true,
    referringLetters,
  };
}

/** JSON with one item per line: small, and diffs of regenerated sets stay readable. */
function manifestJson(manifest: DatasetManifest): string {
  const { items, ...head } = manifest;
  const headJson = JSON.stringify(head, null, 2);
  return `${headJson.slice(0, -2)},\n  "items": [\n${items.map((i) => `    ${JSON.stringify(i)}`).join(',\n')}\n  ]\n}\n`;
}

interface TaskSummary {
  task: string;
  choices: readonly string[];
  chance: number;
  images_per_item: number;
  train: number;
  test: number;
  rows: number;
  answers: Record<string, number>;
  ms: number;
}

function buildTask(task: TaskDef, o: Options): TaskSummary {
  const t0 = performance.now();
  const dir = join(o.out, task.name);
  for (const sub of ['images', 'masks', 'dataset.json', 'items.jsonl', 'images.u8', 'masks.u8']) rmSync(join(dir, sub), { recursive: true, force: true });
  if (o.png) {
    mkdirSync(join(dir, 'images'), { recursive: true });
    mkdirSync(join(dir, 'masks'), { recursive: true });
  }
  mkdirSync(dir, { recursive: true });
  const raw = o.corpus
    ? { images: openSync(join(dir, 'images.u8'), 'w'), masks: openSync(join(dir, 'masks.u8'), 'w'), items: openSync(join(dir, 'items.jsonl'), 'w') }
    : null;
  const items: DatasetItem[] = [];
  const answers: Record<string, number> = Object.fromEntries(task.choices.map((c) => [c, 0]));
  let rows = 0;
  const splits: [Split, number][] = [
    ['train', o.train],
    ['test', o.test],
  ];
  for (const [split, n] of splits) {
    for (let i = 0; i < n; i++) {
      const g: GeneratedItem = generateItem(task, o.seed, split, i);
      const item = toDatasetItem(task, g);
      if (split === 'test') answers[item.answer!] = (answers[item.answer!] ?? 0) + 1;
      if (o.png) {
        g.item.images.forEach((r, k) => {
          writeFileSync(join(dir, item.images[k]!), encodeRgbPng(r.width, r.height, r.rgb));
          writeFileSync(join(dir, `masks/${g.id}_${k}.png`), encodeMaskPng(r.width, r.height, r.mask));
        });
        items.push(item);
      }
      if (raw) {
        const rowIds = g.item.images.map((r) => {
          writeSync(raw.images, r.rgb);
          writeSync(raw.masks, r.mask);
          return rows++;
        });
        const line = { id: item.id, split, prompt: item.prompt, choices: item.choices, answer: item.answer, answer_index: g.answerIndex, rows: rowIds, labels: item.labels, meta: item.meta };
        writeSync(raw.items, `${JSON.stringify(line)}\n`);
      }
    }
  }
  if (raw) for (const fd of Object.values(raw)) closeSync(fd);
  if (o.png) {
    const manifest = DatasetManifest.parse(buildManifest(task, items, { seed: o.seed, train: o.train, test: o.test, command: commandLine(o) }));
    writeFileSync(join(dir, 'dataset.json'), manifestJson(manifest));
  }
  return {
    task: task.name,
    choices: task.choices,
    chance: 1 / task.choices.length,
    images_per_item: task.imagesPerItem,
    train: o.train,
    test: o.test,
    rows,
    answers,
    ms: Math.round(performance.now() - t0),
  };
}

function commandLine(o: Options): string {
  const parts = ['node tools/world/build-world.ts'];
  if (o.corpus) parts.push('--train-corpus', o.out);
  else parts.push('--out', o.out);
  parts.push('--seed', String(o.seed), '--train', String(o.train), '--test', String(o.test));
  // A subset of tasks draws other scenes than the full list, so it belongs to the provenance.
  if (o.tasks.length !== TASKS.length) parts.push('--tasks', o.tasks.map((t) => t.name).join(','));
  if (o.referringLetters !== undefined) parts.push('--referring-letters', String(o.referringLetters));
  if (!o.png) parts.push('--no-png');
  return parts.join(' ');
}

function vocabularyJson(): string {
  return `${JSON.stringify({ words: VOCABULARY, letters: CHOICE_LETTERS, image: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 } }, null, 2)}\n`;
}

function shippedReadme(o: Options, summaries: TaskSummary[]): string {
  const rows = summaries.map((s) => `| \`${s.task}\` | ${s.test} | ${s.images_per_item} | ${s.choices.join(' ')} | ${(100 * s.chance).toFixed(1)} % |`);
  return [
    '# Shipped probe datasets',
    '',
    'Generated by the synthetic world (`src-shared/world/`, see `tools/world/README.md`). Do not edit by',
    'hand; regenerate with:',
    '',
    '```sh',
    commandLine(o),
    '```',
    '',
    `Seed ${o.seed}, test split only, answers balanced over the choices. Each folder holds \`dataset.json\``,
    '(loupe-dataset v1), `images/<id>_<k>.png` (64×64 RGB) and `masks/<id>_<k>.png` (instance ids).',
    '`vocabulary.json` lists every prompt/answer token.',
    '',
    '| task | items | images/item | choices | chance |',
    '|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

/**
 * Task entries of corpus.json: a `--tasks` subset rebuild replaces only its own entries and keeps
 * the others already in DIR, so the index always describes every task folder present.
 */
function mergeTasks(path: string, fresh: Omit<TaskSummary, 'ms'>[]): Omit<TaskSummary, 'ms'>[] {
  let old: Omit<TaskSummary, 'ms'>[] = [];
  if (existsSync(path)) {
    try {
      old = (JSON.parse(readFileSync(path, 'utf8')) as { tasks?: Omit<TaskSummary, 'ms'>[] }).tasks ?? [];
    } catch {
      old = [];
    }
  }
  const byName = new Map(old.map((t) => [t.task, t]));
  for (const t of fresh) byName.set(t.task, t);
  return TASKS.map((t) => byName.get(t.name)).filter((t) => t !== undefined);
}

function main(): void {
  const o = parseOptions(process.argv.slice(2));
  mkdirSync(o.out, { recursive: true });
  // Ignore the corpus before writing it, so a half-written corpus is never picked up by git.
  if (o.corpus) writeFileSync(join(o.out, '.gitignore'), '*\n');
  const summaries: TaskSummary[] = [];
  for (const task of o.tasks) {
    const s = buildTask(task, o);
    summaries.push(s);
    console.log(`${s.task}: ${s.train} train + ${s.test} test items, ${s.rows || '-'} rows, ${(s.ms / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(o.out, 'vocabulary.json'), vocabularyJson());
  if (o.corpus) {
    const corpus = {
      generator: 'loupe-world',
      seed: o.seed,
      command: commandLine(o),
      image: { width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 },
      files: { images: 'images.u8 uint8 [rows,64,64,3]', masks: 'masks.u8 uint8 [rows,64,64]', items: 'items.jsonl' },
      tasks: mergeTasks(join(o.out, 'corpus.json'), summaries.map(({ ms: _ms, ...s }) => s)),
    };
    writeFileSync(join(o.out, 'corpus.json'), `${JSON.stringify(corpus, null, 2)}\n`);
  } else if (o.tasks.length === TASKS.length) {
    writeFileSync(join(o.out, 'README.md'), shippedReadme(o, summaries));
  }
}

main();
