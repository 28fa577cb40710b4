/**
 * Compensation sweeps through the contract: partial summaries while runs are unfinished (null
 * cells, never an error), recovery recomputed from each run's own readout summary, reopening
 * via sweeps/list, and clear refusals before anything is queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { modelShape, sweepGrid } from '../../src-shared/ablation/sweep-grid.ts';
import { type ResultOf, methods } from '../../src-shared/contract/methods.ts';
import { sweepSummary } from '../../src-main/experiments/compensation/sweeps.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_ID, MODEL_ID } from '../helpers/fixtures.ts';

type Summary = ResultOf<'sweeps/summary'>;
type Readout = ResultOf<'readout/summary'>;

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

const call = <T>(method: string, params: unknown): Promise<T> => callEngine<T>(engine, method, params);
const shape = modelShape(JSON.parse(readFileSync(join(RESOURCES_DIR, 'models', MODEL_ID, 'config.json'), 'utf8')) as Record<string, unknown>);
const grid = sweepGrid({ kind: 'vision-patches' }, shape);
const LIMIT = 6;
const start = (name: string, entries: typeof grid) =>
  call<{ sweepId: string; runIds: string[] }>('sweeps/start', { modelId: MODEL_ID, datasetId: DATASET_ID, name, base: { limit: LIMIT, gram: false, cls: false }, ablations: entries.map((g) => g.spec), labels: entries.map((g) => g.label) });

/** Recovery of every cell recomputed from the runs' own readout summaries. */
async function expectRecoveryFromReadouts(sweep: Summary, floor: 'chance' | 'blind') {
  const readouts = await Promise.all(sweep.runs.map((r) => (r.status === 'done' ? call<Readout>('readout/summary', { runId: r.id }) : null)));
  const acc = (s: Readout | null, stage: string) => (s === null ? null : stage === 'answer' ? s.answer.accuracy : s.stages.find((x) => x.stage === stage)!.accuracy);
  const [intact, ...ablated] = readouts;
  expect(sweep.floor).toBe(floor === 'chance' ? intact!.chance : intact!.blind.accuracy);
  // Feature readouts always use chance: a blank image has no features to probe.
  expect(sweep.featureFloor).toBe(intact!.chance);
  expect(sweep.stages.map((s) => s.stage)).toEqual([...intact!.stages.map((s) => s.stage), 'answer']);
  for (const row of sweep.stages) {
    expect(row.intact).toBe(acc(intact!, row.stage));
    row.ablated.forEach((a, j) => {
      expect(a).toBe(acc(ablated[j]!, row.stage));
      const f = row.stage === 'answer' ? sweep.floor! : sweep.featureFloor!;
      // An intact readout at (or below) its floor can never define a recovery.
      if (row.intact! <= f) expect(row.intactAboveFloor).toBe(false);
      if (a === null || !row.intactAboveFloor) {
        expect(row.recovery[j]).toBeNull();
        if (a !== null) expect(row.note).toMatch(/within noise of 0: recovery is not defined/);
      } else {
        expect(row.recovery[j]).toBeCloseTo((a - f) / (row.intact! - f), 12);
        const [low, high] = row.recoveryInterval[j]!;
        expect(low).toBeLessThanOrEqual(row.recovery[j]! + 1e-12);
        expect(high).toBeGreaterThanOrEqual(row.recovery[j]! - 1e-12);
        expect(row.mcnemarP[j]).toBeGreaterThan(0);
        expect(row.mcnemarP[j]).toBeLessThanOrEqual(1);
      }
    });
  }
}

describe('sweep summaries while the sweep runs', () => {
  let a: { sweepId: string; runIds: string[] };

  it('has null cells for unfinished runs: nothing, then the intact column, then each ablation as it finishes', async () => {
    expect(grid.map((g) => g.spec.edits[0]!.layers)).toEqual([[2], [1, 2], [0, 1, 2]]); // micro-llava exports vision layers 0..2
    // The summary at the moment each run of the sweep finishes, taken synchronously in the event.
    const snapshots = new Map<string, Summary>();
    const off = engine.onEvent((name, payload) => {
      const run = payload as { id: string; status: string };
      if (name === 'job/state' && run.status === 'done' && a?.runIds.includes(run.id)) snapshots.set(run.id, methods['sweeps/summary'].result.parse(sweepSummary(engine.store, a.sweepId, 'chance')));
    });
    a = await start('iso', grid);
    expect(a.runIds).toHaveLength(4);

    const before = await call<Summary>('sweeps/summary', { sweepId: a.sweepId });
    expect(before).toMatchObject({ sweepId: a.sweepId, name: 'iso', floor: null, stages: [] });
    expect(before.runs.map((r) => r.label)).toEqual(['intact', ...grid.map((g) => g.label)]);
    expect(before.runs.every((r) => r.status !== 'done' && r.total === LIMIT)).toBe(true);

    // The last ablation is cancelled before it starts: the sweep finishes with a hole.
    await call('jobs/cancel', { runId: a.runIds[3] });
    await engine.queue.drained();
    off();

    // When the intact run finished: its column and the floor, every ablated cell and recovery null.
    const first = snapshots.get(a.runIds[0]!)!;
    expect(first.floor).toBeCloseTo(1 / 7, 12);
    expect(first.stages.length).toBeGreaterThan(5);
    for (const row of first.stages) {
      expect(row.intact).not.toBeNull();
      expect(row.ablated).toEqual([null, null, null]);
      expect(row.recovery).toEqual([null, null, null]);
    }
    expect(first.runs.map((r) => r.status)).toEqual(['done', expect.stringMatching(/queued|running/), 'queued', 'cancelled']);
    // When the first ablation finished: its column filled in, the others still null.
    const second = snapshots.get(a.runIds[1]!)!;
    expect(second.stages.every((r) => r.ablated[0] !== null && r.ablated[1] === null && r.ablated[2] === null)).toBe(true);
    expect(second.stages.map((r) => r.intact)).toEqual(first.stages.map((r) => r.intact));

    const final = await call<Summary>('sweeps/summary', { sweepId: a.sweepId, floor: 'chance' });
    expect(final.runs.map((r) => r.status)).toEqual(['done', 'done', 'done', 'cancelled']);
    expect(final.stages.every((r) => r.ablated[2] === null && r.recovery[2] === null)).toBe(true);
    await expectRecoveryFromReadouts(final, 'chance');
    await expectRecoveryFromReadouts(await call<Summary>('sweeps/summary', { sweepId: a.sweepId, floor: 'blind' }), 'blind');
    // Both branches are exercised: some stages define a recovery (with interval), some are within noise.
    expect(final.stages.some((r) => r.intactAboveFloor === true && r.recovery[0] !== null)).toBe(true);
    // The patch embedding precedes every attention layer: no ablation can touch its readout.
    const emb = final.stages.find((r) => r.stage === 'vision.hidden_states.0')!;
    expect(emb.ablated.slice(0, 2)).toEqual([emb.intact, emb.intact]);
    // Values are accuracies over the 6 items.
    for (const row of final.stages) for (const v of [row.intact, ...row.ablated]) if (v !== null) expect(Math.abs(v * LIMIT - Math.round(v * LIMIT))).toBeLessThan(1e-9);
  });

  it('fills the hole when the cancelled run is resumed', async () => {
    await call('jobs/resume', { runId: a.runIds[3] });
    await engine.queue.drained();
    const full = await call<Summary>('sweeps/summary', { sweepId: a.sweepId });
    expect(full.runs.map((r) => r.status)).toEqual(['done', 'done', 'done', 'done']);
    expect(full.stages.every((r) => r.ablated.every((v) => v !== null))).toBe(true);
    await expectRecoveryFromReadouts(full, 'chance');
  });

  it('shows finished ablations next to an intact run that is not done, without a floor or recovery', async () => {
    const b = await start('no intact', grid.slice(0, 1));
    await call('jobs/cancel', { runId: b.runIds[0] });
    await engine.queue.drained();
    const s = await call<Summary>('sweeps/summary', { sweepId: b.sweepId, floor: 'blind' });
    expect(s.runs.map((r) => r.status)).toEqual(['cancelled', 'done']);
    expect(s.floor).toBeNull();
    const ablated = await call<Readout>('readout/summary', { runId: b.runIds[1] });
    expect(s.stages.map((r) => r.stage)).toEqual([...ablated.stages.map((x) => x.stage), 'answer']);
    for (const row of s.stages) {
      expect(row.intact).toBeNull();
      expect(row.recovery).toEqual([null]);
      expect(row.ablated[0]).toBe(row.stage === 'answer' ? ablated.answer.accuracy : ablated.stages.find((x) => x.stage === row.stage)!.accuracy);
    }

    // Both sweeps can be reopened, newest first, with their runs' labels and progress.
    const list = await call<ResultOf<'sweeps/list'>>('sweeps/list', {});
    expect(list.map((x) => x.id)).toEqual([b.sweepId, a.sweepId]);
    expect(list[1]).toMatchObject({ name: 'iso', modelId: MODEL_ID, datasetId: DATASET_ID });
    expect(list[1]!.runs.map((r) => [r.id, r.label, r.status, r.done])).toEqual(a.runIds.map((id, i) => [id, i ? grid[i - 1]!.label : 'intact', 'done', LIMIT]));
    expect(list[0]!.runs.map((r) => r.status)).toEqual(['cancelled', 'done']);
  });
});

describe('sweep refusals', () => {
  it('refuses, before creating anything, specs the model cannot take and readouts with too few items', async () => {
    const sweepsBefore = (await call<unknown[]>('sweeps/list', {})).length;
    const runsBefore = engine.store.runs.list().length;
    const base = { modelId: MODEL_ID, datasetId: DATASET_ID, name: 'bad', base: { limit: LIMIT } };
    const block = (edit: object) => ({ edits: [{ op: 'block', part: 'vision', queries: { kind: 'patches' }, keys: { kind: 'patches' }, ...edit }] });
    await expect(call('sweeps/start', { ...base, ablations: [block({ layers: [3] })] })).rejects.toThrow(/ablation 1: vision layer\(s\) 3 are not in the model's graph \(it has vision layers 0, 1, 2\)/);
    await expect(call('sweeps/start', { ...base, ablations: [block({}), block({ part: 'llm', heads: [9] })], labels: ['a', 'b'] })).rejects.toThrow(/ablation 2 \(b\): llm head\(s\) 9 do not exist/);
    await expect(call('sweeps/start', { ...base, ablations: [{ edits: [{ op: 'zero', part: 'llm', tokens: { kind: 'image' } }] }] })).rejects.toThrow(/token ablation \(zero\) is not implemented/);
    await expect(call('sweeps/start', { ...base, ablations: [block({})], labels: ['a', 'b'] })).rejects.toThrow(/1 ablation spec\(s\) but 2 label\(s\)/);
    await expect(call('sweeps/start', { ...base, base: { limit: 4 }, ablations: [block({})] })).rejects.toThrow(/at least 5 items; dataset colour-at-point gives 4 with limit 4/);
    await expect(call('sweeps/summary', { sweepId: 'sweep-nope' })).rejects.toThrow(/no sweep with id sweep-nope/);
    expect((await call<unknown[]>('sweeps/list', {})).length).toBe(sweepsBefore);
    expect(engine.store.runs.list().length).toBe(runsBefore);
  });
});
