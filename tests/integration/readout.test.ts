/**
 * The readout experiment on the probe world: stage-wise readouts vs the VLM's answer and a
 * blind answer, checked against what the features must contain and recomputed by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { cosine } from '../../src-shared/metrics/probe.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);

type Summary = {
  items: number;
  chance: number;
  stages: { stage: string; method: string; accuracy: number; shuffledAccuracy: number | null }[];
  answer: { accuracy: number };
  blind: { accuracy: number };
  tv: { answerVsTruth: number };
  distributions: { answer: number[]; blind: number[]; truth: number[] };
  presentNotSurfaced: string[];
};

async function readout(datasetId: string): Promise<{ runId: string; summary: Summary }> {
  const run = await call<{ id: string }>('jobs/start', { kind: 'readout', modelId: 'micro-llava', datasetId, spec: {} });
  await engine.queue.drained();
  expect(engine.store.runs.get(run.id)).toMatchObject({ status: 'done', failed: 0 });
  return { runId: run.id, summary: await call<Summary>('readout/summary', { runId: run.id }) };
}

describe('readout vs answer vs blind', () => {
  it('colour at a marker is linearly readable from the patch embedding, and the control is not', async () => {
    const { summary } = await readout('colour-at-point');
    expect(summary.items).toBe(96);
    const first = summary.stages[0]!;
    expect(first.stage).toBe('vision.hidden_states.0');
    // The first stage is an affine map of the patch's pixels: colour must be readable far above chance (1/7).
    expect(first.accuracy).toBeGreaterThan(3 * summary.chance);
    expect(first.shuffledAccuracy!).toBeLessThan(first.accuracy - 0.2);
    // Stages run encoder → projector → LLM.
    const names = summary.stages.map((s) => s.stage);
    expect(names.indexOf('projector')).toBeGreaterThan(names.indexOf('vision.hidden_states.3'));
    expect(names.indexOf('text.hidden_states.0')).toBeGreaterThan(names.indexOf('projector'));
    // Answer distributions are distributions, and TV is half their L1 distance.
    const d = summary.distributions;
    for (const h of [d.answer, d.blind, d.truth]) expect(h.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(summary.tv.answerVsTruth).toBeCloseTo(d.answer.reduce((s, v, i) => s + Math.abs(v - d.truth[i]!), 0) / 2, 12);
    // "Present but not surfaced" = answer wrong while some stage's readout is right: never more than the wrong answers.
    expect(summary.presentNotSurfaced.length).toBeLessThanOrEqual(Math.round((1 - summary.answer.accuracy) * summary.items));
  });

  it('correspondence by cosine similarity equals a recomputation from the stored features', async () => {
    const { runId, summary } = await readout('correspondence');
    const stage = summary.stages.find((s) => s.stage === 'vision.hidden_states.0')!;
    expect(stage.method).toBe('cosine');
    let right = 0;
    for (const r of engine.store.runs.results(runId)) {
      const meta = r.tensors.find((t) => t.name === 'readout.vision.hidden_states.0')!;
      const m = toFloat32(engine.store.blobs.getTensors(meta.blob)[meta.name]!);
      const dim = meta.shape[1]!;
      const sims = [1, 2, 3, 4].map((c) => cosine(m.subarray(0, dim), m.subarray(c * dim, (c + 1) * dim)));
      const item = engine.store.datasets.item('correspondence', r.itemId);
      if (item.choices![sims.indexOf(Math.max(...sims))] === item.answer) right++;
    }
    expect(stage.accuracy).toBeCloseTo(right / summary.items, 12);
    expect(stage.accuracy).toBeGreaterThan(summary.chance + 0.15);
  });
});

describe('compensation sweep', () => {
  it('queues intact + ablated readouts and reports recovery per stage from their summaries', async () => {
    const ablation = { edits: [{ op: 'block', part: 'vision', layers: [0, 1, 2], queries: { kind: 'patches' }, keys: { kind: 'patches' }, excludeSelf: true }] };
    const { sweepId, runIds } = await call<{ sweepId: string; runIds: string[] }>('sweeps/start', { modelId: 'micro-llava', datasetId: 'colour-at-point', name: 'iso', base: { limit: 30 }, ablations: [ablation] });
    await engine.queue.drained();
    expect(runIds).toHaveLength(2);
    expect(engine.store.runs.get(runIds[1]!).spec).toMatchObject({ ablation: { edits: [{ op: 'block', layers: [0, 1, 2] }] } });
    const sweep = await call<{ floor: number; stages: { stage: string; intact: number; ablated: (number | null)[]; recovery: (number | null)[] }[] }>('sweeps/summary', { sweepId, floor: 'chance' });
    const intact = await call<Summary>('readout/summary', { runId: runIds[0] });
    const ablated = await call<Summary>('readout/summary', { runId: runIds[1] });
    expect(sweep.floor).toBeCloseTo(1 / 7, 12);
    for (const row of sweep.stages.filter((r) => r.stage !== 'answer')) {
      const a = ablated.stages.find((s) => s.stage === row.stage)!.accuracy;
      const i = intact.stages.find((s) => s.stage === row.stage)!.accuracy;
      expect(row.ablated[0]).toBe(a);
      if (row.recovery[0] !== null) expect(row.recovery[0]).toBeCloseTo((a - sweep.floor) / (i - sweep.floor), 12);
    }
    // The patch embedding precedes every attention layer: ablation cannot touch its readout.
    const emb = sweep.stages.find((r) => r.stage === 'vision.hidden_states.0')!;
    expect(emb.ablated[0]).toBe(emb.intact);
    await expect(call('sweeps/summary', { sweepId: 'sweep-nope' })).rejects.toThrow(/no sweep/);
  });
});
