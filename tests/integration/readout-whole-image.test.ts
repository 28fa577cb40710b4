/**
 * Whole-image readouts of "Hidden in plain sight" and answers by generation + matching, on items
 * built from the bundled style set: a reference image and two options (BLINK Art_Style's shape).
 * The stored per-choice scores are checked against Gram matrices formed explicitly from a
 * vlm-forward run's vision taps, and the generated answers against that run's generated text.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { gramVector } from '../../src-shared/metrics/gram.ts';
import { cosine } from '../../src-shared/metrics/probe.ts';
import { matchAnswer } from '../../src-shared/metrics/answer-matching.ts';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { tempDir } from '../helpers/fixtures.ts';

let engine: Engine;
let datasetId: string;
const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

interface Item {
  id: string;
  images: string[];
  prompt: string;
  choices: string[];
  answer: string;
  labels: never[];
  meta: Record<string, unknown>;
}

/** Reference + same-pattern option + other-pattern option; the correct option's position alternates, and the wording differs per item (as BLINK's does). */
function styleDataset(): string {
  const source = join(RESOURCES_DIR, 'datasets', 'style');
  const manifest = JSON.parse(readFileSync(join(source, 'dataset.json'), 'utf8')) as { items: { images: string[]; answer: string }[] };
  const byClass = new Map<string, string[]>();
  for (const it of manifest.items) byClass.set(it.answer, [...(byClass.get(it.answer) ?? []), it.images[0]!]);
  const classes = [...byClass.keys()].sort();
  const root = tempDir();
  mkdirSync(join(root, 'images'));
  const items: Item[] = [];
  for (let i = 0; i < 8; i++) {
    const same = classes[i % classes.length]!;
    const other = classes[(i + 1) % classes.length]!;
    const pick = (c: string, k: number) => byClass.get(c)![k]!;
    const files = [pick(same, i), pick(same, i + 12), pick(other, i)].map((f, k) => {
      const rel = `images/${i}-${k}.png`;
      copyFileSync(join(source, f), join(root, rel));
      return rel;
    });
    const swap = i % 2 === 1;
    const images = swap ? [files[0]!, files[2]!, files[1]!] : files;
    // Words the micro model's tokenizer knows, with distinct first tokens.
    const choices = i % 3 === 0 ? ['solid', 'striped'] : ['dotted', 'checkered'];
    items.push({ id: `art-${i}`, images, prompt: `which image has the same pattern as the first one? (A) ${choices[0]} (B) ${choices[1]}`, choices, answer: choices[swap ? 1 : 0]!, labels: [], meta: { sub_task: 'Art_Style' } });
  }
  writeFileSync(join(root, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'art-style-probe', task: 'blink:Art_Style', items }));
  return root;
}

beforeAll(async () => {
  engine = await startTestEngine();
  datasetId = (await call<{ id: string }>('datasets/import', { path: styleDataset() })).id;
});
afterAll(() => engine?.close());

describe('whole-image readouts (style) and generation + matching', () => {
  it('stores per-option Gram cosines equal to explicitly formed Gram matrices, and answers by generation equal to a vlm-forward', async () => {
    const readout = await call<{ id: string }>('jobs/start', { kind: 'readout', modelId: 'micro-llava', datasetId, spec: { generate: 3 } });
    const forward = await call<{ id: string }>('jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId, spec: { maxNewTokens: 3, storeDtype: 'float32', taps: { visionLayers: true } } });
    await engine.queue.drained();
    expect(engine.store.runs.get(readout.id)).toMatchObject({ status: 'done', failed: 0 });
    const forwardResults = new Map(engine.store.runs.results(forward.id).map((r) => [r.itemId, r]));
    let compared = 0;
    for (const r of engine.store.runs.results(readout.id)) {
      expect(r.values.geometry).toBe('style');
      const f = forwardResults.get(r.itemId)!;
      for (const layer of [0, 3]) {
        const name = `vision.hidden_states.${layer}`;
        const scoresMeta = r.tensors.find((t) => t.name === `zeroshot.${name}`)!;
        const scores = toFloat32(engine.store.blobs.getTensors(scoresMeta.blob)[scoresMeta.name]!);
        const tapMeta = f.tensors.find((t) => t.name === name)!;
        const tap = engine.store.blobs.getTensors(tapMeta.blob)[tapMeta.name]!;
        const [images, perImage, dim] = tap.shape as [number, number, number];
        expect(images).toBe(3);
        const data = toFloat32(tap);
        // Patches only: the first perImage − 64 rows of each image are the CLS prefix.
        const patches = (k: number) => data.subarray((k * perImage + perImage - 64) * dim, (k + 1) * perImage * dim);
        const ref = gramVector(patches(0), dim);
        const want = [1, 2].map((k) => cosine(ref, gramVector(patches(k), dim)));
        for (let k = 0; k < 2; k++) expect(Math.abs(scores[k]! - want[k]!)).toBeLessThan(1e-4);
        compared++;
      }
      // Generation + matching: the readout's generated text is the vlm-forward's, matched by the rules.
      expect(r.values.generated).toBe(f.values.generated);
      const item = engine.store.datasets.item(datasetId, r.itemId);
      const k = matchAnswer(String(r.values.generated), item.choices!);
      expect(r.values.generatedChoice).toBe(k === null ? null : item.choices![k]);
      expect(r.metrics.generatedCorrect).toBe(k !== null && item.choices![k] === item.answer ? 1 : 0);
    }
    expect(compared).toBe(16);

    const summary = await call<{ choices: string[]; stages: { stage: string; method: string; accuracy: number }[]; distributions: { truth: number[] }; generated: { answer: { accuracy: number }; unmatched: number } | null }>('readout/summary', { runId: readout.id });
    // Wording differs across items, so positions are named by letter; the truth alternates A/B.
    expect(summary.choices).toEqual(['A', 'B']);
    expect(summary.distributions.truth).toEqual([0.5, 0.5]);
    const first = summary.stages.find((s) => s.stage === 'vision.hidden_states.0')!;
    expect(first.method).toBe('gram');
    // Recompute that stage's accuracy from the stored scores: the highest-scoring option.
    let right = 0;
    for (const r of engine.store.runs.results(readout.id)) {
      const meta = r.tensors.find((t) => t.name === 'zeroshot.vision.hidden_states.0')!;
      const s = toFloat32(engine.store.blobs.getTensors(meta.blob)[meta.name]!);
      const item = engine.store.datasets.item(datasetId, r.itemId);
      if (item.choices![s[0]! >= s[1]! ? 0 : 1] === item.answer) right++;
    }
    expect(first.accuracy).toBeCloseTo(right / 8, 12);
    const generated = engine.store.runs.results(readout.id);
    expect(summary.generated).not.toBeNull();
    expect(summary.generated!.answer.accuracy).toBeCloseTo(generated.filter((r) => r.metrics.generatedCorrect === 1).length / 8, 12);
    expect(summary.generated!.unmatched).toBe(generated.filter((r) => r.values.generatedChoice === null).length);
  });

  it('refuses an Art_Style item without one image per choice, naming the item', async () => {
    const root = tempDir();
    mkdirSync(join(root, 'images'));
    copyFileSync(join(RESOURCES_DIR, 'datasets', 'style', 'images', 'style-test-000000_0.png'), join(root, 'images', 'a.png'));
    const items = Array.from({ length: 5 }, (_, i) => ({ id: `bad-${i}`, images: ['images/a.png', 'images/a.png'], prompt: 'q', choices: ['solid', 'striped'], answer: 'solid', labels: [], meta: { sub_task: 'Art_Style' } }));
    writeFileSync(join(root, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'bad-art', task: 'blink:Art_Style', items }));
    const id = (await call<{ id: string }>('datasets/import', { path: root })).id;
    const run = await call<{ id: string }>('jobs/start', { kind: 'readout', modelId: 'micro-llava', datasetId: id, spec: { limit: 1 } });
    await engine.queue.drained();
    const failures = engine.store.db.prepare('SELECT error FROM run_items WHERE run_id = ? AND error IS NOT NULL').all(run.id) as { error: string }[];
    expect(failures[0]?.error).toMatch(/bad-0.*reference image and one image per choice/);
  });
});
