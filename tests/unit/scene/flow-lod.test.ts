import { describe, expect, it } from 'vitest';
import type { FlowLayout } from '../../../src-renderer/src/scene/flow-data.ts';
import { LodController, TOKEN_COST, splitBudget, tokenOrder } from '../../../src-renderer/src/scene/flow-lod.ts';

function layout(points: [number, number][]): FlowLayout {
  const xy = Float32Array.from(points.flat());
  return { seq: points.length, xy, isImage: new Uint8Array(points.length), width: 0, height: 0 };
}

describe('token order for decimation', () => {
  it('puts coarse lattice levels first (strides 8, 4, 2, 1 from the corner), sequence order within a level', () => {
    // A row of 9 tokens at x = -4..4 (centred as layoutTokens leaves them): cells 0..8 from the corner.
    const row = layout(Array.from({ length: 9 }, (_, i) => [i - 4, 0] as [number, number]));
    const { order, levelEnd } = tokenOrder(row);
    // Level 0: cells 0, 8; level 1: 4; level 2: 2, 6; level 3: the odd cells.
    expect(Array.from(order)).toEqual([0, 8, 4, 2, 6, 1, 3, 5, 7]);
    expect(levelEnd).toEqual([2, 3, 5, 9]);
  });

  it('needs both coordinates on the lattice', () => {
    // The corner (minimum x and y) is (0, 0) here.
    const l = layout([[0, 0], [4, 2], [4, 4], [8, 8], [1, 0], [2, 4]]);
    const { order, levelEnd } = tokenOrder(l);
    // (0,0) and (8,8): level 0; (4,4): level 1; (4,2) and (2,4): level 2; (1,0): level 3.
    expect(Array.from(order)).toEqual([0, 3, 2, 1, 5, 4]);
    expect(levelEnd).toEqual([2, 3, 5, 6]);
  });
});

describe('budget split between edges and tokens', () => {
  // Per plane 25 tokens: levels end at 1, 4, 9, 25; two planes → 2, 8, 18, 50 points.
  const ends = [1, 4, 9, 25];
  const total = 100 + TOKEN_COST * 50;

  it('draws everything when the budget covers the scene (or is unlimited)', () => {
    expect(splitBudget(Infinity, 100, ends, 2)).toEqual({ edges: 100, tokenLevel: 3 });
    expect(splitBudget(total, 100, ends, 2)).toEqual({ edges: 100, tokenLevel: 3 });
  });

  it('keeps the share s of the strongest edges and tokens up to the finest level with at most 4·s of them', () => {
    // s = 0.5: 50 edges; 4·0.5·50 = 100 ≥ 50 tokens → every level.
    expect(splitBudget(total / 2, 100, ends, 2)).toEqual({ edges: 50, tokenLevel: 3 });
    // s = 0.1: 10 edges; 4·0.1·50 = 20 → level 2 (18 points), not level 3 (50).
    expect(splitBudget(total / 10, 100, ends, 2)).toEqual({ edges: 10, tokenLevel: 2 });
    // s = 0.02: 2 edges; 4 points fit → level 0 (2 points), not level 1 (8).
    expect(splitBudget(total / 50, 100, ends, 2)).toEqual({ edges: 2, tokenLevel: 0 });
    // Nothing fits: still the coarsest lattice, no edges.
    expect(splitBudget(0, 100, ends, 2)).toEqual({ edges: 0, tokenLevel: 0 });
  });
});

describe('LOD controller', () => {
  const target = 1000 / 60;
  /** A controller past its first miss (reduced resolution, budget still unlimited). */
  function lowRes(opts?: ConstructorParameters<typeof LodController>[1]) {
    const c = new LodController(target, opts);
    expect(c.sample(100, 1000)).toBe(true);
    expect([c.lowRes, c.budget]).toEqual([true, Infinity]);
    c.sample(target, 1000); // the two queued frames
    c.sample(target, 1000);
    return c;
  }

  it('keeps full detail and resolution while frames are on time', () => {
    const c = new LodController(target);
    for (let i = 0; i < 100; i++) expect(c.sample(target, 1000)).toBe(false);
    expect([c.lowRes, c.budget]).toEqual([false, Infinity]);
  });

  it('answers a first miss with the reduced drawing buffer, later ones by cutting the budget in proportion', () => {
    const c = lowRes();
    // 100 ms for the whole scene (1000): × target/100 = 0.1667.
    expect(c.sample(100, 1000)).toBe(true);
    expect(c.budget).toBeCloseTo(1000 * (target / 100));
    const cut = c.budget;
    // The next two intervals belong to frames queued before the cut: ignored.
    expect(c.sample(100, 1000)).toBe(false);
    expect(c.sample(100, 1000)).toBe(false);
    for (let i = 0; i < 7; i++) expect(c.sample(16, 1000)).toBe(false);
    expect(c.sample(16, 1000)).toBe(true);
    expect(c.budget).toBeCloseTo(cut * 1.1);
    // Growth stops at 0.9 × the budget that missed (1000 here) while that miss is recent.
    for (let i = 0; i < 8 * 20; i++) c.sample(16, 1000);
    expect(c.budget).toBeCloseTo(900);
  });

  it('never cuts by more than ×0.05 at once, nor below its floor; a slightly late frame is not a miss', () => {
    const c = lowRes();
    c.sample(10_000, 100_000);
    expect(c.budget).toBeCloseTo(5000);
    const d = lowRes();
    d.sample(20, 1000); // under 1.25 × target
    expect(d.budget).toBe(Infinity);
    d.sample(21, 1000); // just over: × target / 21
    expect(d.budget).toBeCloseTo((1000 * target) / 21);
    const e = lowRes({ minBudget: 64 });
    e.sample(10_000, 100);
    expect(e.budget).toBe(64);
  });

  it('settles where simulated frames hold the budget (vsync-quantised cost model)', () => {
    // Frame cost 4 ms + 0.01 ms per unit drawn (0.006 at reduced resolution): 2111 units fit
    // 16.67 ms at reduced resolution; the scene is 20 000.
    const total = 20_000;
    const fits = (target - 4) / 0.006;
    const c = new LodController(target);
    const onTime: boolean[] = [];
    const budgets: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const drawn = Math.min(total, c.budget);
      const interval = Math.ceil((4 + (c.lowRes ? 0.006 : 0.01) * drawn) / target - 1e-9) * target; // the next vsync after the work
      onTime.push(interval <= target * 1.1);
      budgets.push(drawn);
      c.sample(interval, total);
    }
    // The first frames draw everything (~200 ms); from then on nearly every frame is on time,
    // drawing on average more than 60 % of what fits.
    expect(onTime[0]).toBe(false);
    expect(c.lowRes).toBe(true);
    const late = onTime.slice(-1000).filter((x) => !x).length;
    expect(late / 1000).toBeLessThan(0.02);
    const mean = budgets.slice(-1000).reduce((a, b) => a + b, 0) / 1000;
    expect(mean).toBeLessThanOrEqual(fits);
    expect(mean).toBeGreaterThan(0.6 * fits);
  });

  it('goes back to unlimited, then to full resolution, when the whole scene fits again', () => {
    const c = lowRes({ holdSamples: 10 });
    c.sample(40, 1000);
    expect(c.budget).toBeLessThan(1000);
    for (let i = 0; i < 400 && c.budget !== Infinity; i++) c.sample(16, 1000);
    expect([c.budget, c.lowRes]).toEqual([Infinity, true]);
    for (let i = 0; i < 10; i++) c.sample(16, 1000);
    expect(c.lowRes).toBe(true);
    expect(c.sample(16, 1000)).toBe(true);
    expect(c.lowRes).toBe(false);
    c.sample(100, 1000);
    c.reset();
    expect([c.budget, c.lowRes]).toEqual([Infinity, false]);
  });
});
