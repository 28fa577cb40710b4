import { describe, expect, it } from 'vitest';
import { COLOUR_DARK, COLOUR_RGB, SHAPE_PLURAL, type Colour, type Shape } from '../../../src-shared/world/attributes.ts';
import { instanceStats } from '../../../src-shared/world/analysis.ts';
import { insideShape } from '../../../src-shared/world/shapes.ts';
import { generateItem } from '../../../src-shared/world/dataset.ts';
import { referringWithLetters } from '../../../src-shared/world/tasks/referring.ts';
import { at, itemsOf, objectsOf, pointsOf, SEED, type ObjMeta } from './fixtures.ts';

const W = 64;

describe('point attribute tasks', () => {
  it('colour-at-point: the object under the marker has the answer colour, visible in the ring centre', () => {
    for (const g of itemsOf('colour-at-point')) {
      const img = g.item.images[0]!;
      const p = pointsOf(g).get('point')!.at;
      const id = at(img.mask, W, p);
      const target = objectsOf(g).find((o) => o.id === id)!;
      expect(target.colour).toBe(g.item.answer);
      // The point marker leaves its centre 3×3 untouched: the answer colour (or its shade) shows.
      const i = (p[1] * W + p[0]) * 3;
      const px = [img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]];
      const c = g.item.answer as Colour;
      expect([COLOUR_RGB[c].join(), COLOUR_DARK[c].join()]).toContain(px.join());
    }
  });

  it('shape-at-point and style: the marked object has the answer attribute', () => {
    for (const [task, key] of [['shape-at-point', 'shape'], ['style', 'style']] as const) {
      for (const g of itemsOf(task)) {
        const p = pointsOf(g).get('point')!.at;
        const id = at(g.item.images[0]!.mask, W, p);
        expect(id).toBe(g.item.meta.targetId);
        expect(objectsOf(g).find((o) => o.id === id)![key]).toBe(g.item.answer);
      }
    }
  });
});

describe('count', () => {
  const words = ['one', 'two', 'three', 'four', 'five'];
  it('the answer equals the number of distinct mask ids of the queried class', () => {
    for (const g of itemsOf('count')) {
      const objs = objectsOf(g);
      const prompt = g.item.prompt;
      const matches = (o: ObjMeta): boolean => {
        if (prompt === 'how many objects are there ?') return true;
        const word = prompt.split(' ')[2]!;
        return o.colour === word || SHAPE_PLURAL[o.shape as keyof typeof SHAPE_PLURAL] === word;
      };
      const ids = new Set(objs.filter(matches).map((o) => o.id));
      const visible = new Set([...g.item.images[0]!.mask].filter((v) => ids.has(v)));
      expect(visible.size).toBe(words.indexOf(g.item.answer) + 1);
    }
  });
});

describe('relation', () => {
  it('the answer agrees with the object centres, by a clear margin', () => {
    for (const g of itemsOf('relation')) {
      const m = /^is the (\w+) (\w+) (left of|right of|above|below) the (\w+) (\w+) \?$/.exec(g.item.prompt)!;
      expect(m).not.toBeNull();
      const objs = objectsOf(g);
      const find = (c: string, s: string): ObjMeta[] => objs.filter((o) => o.colour === c && o.shape === s);
      const [a] = find(m[1]!, m[2]!);
      const [b] = find(m[4]!, m[5]!);
      expect(find(m[1]!, m[2]!)).toHaveLength(1);
      expect(find(m[4]!, m[5]!)).toHaveLength(1);
      const d = { 'left of': b!.centre[0] - a!.centre[0], 'right of': a!.centre[0] - b!.centre[0], above: b!.centre[1] - a!.centre[1], below: a!.centre[1] - b!.centre[1] }[m[3]!]!;
      expect(Math.abs(d)).toBeGreaterThanOrEqual(8);
      expect(d > 0 ? 'yes' : 'no').toBe(g.item.answer);
    }
  });
});

describe('relative-depth', () => {
  it('the answer marks the nearer object; where the two overlap, it is the one drawn on top', () => {
    let overlaps = 0;
    for (const g of itemsOf('relative-depth', 80)) {
      const mask = g.item.images[0]!.mask;
      const pts = pointsOf(g);
      const ida = at(mask, W, pts.get('a')!.at);
      const idb = at(mask, W, pts.get('b')!.at);
      expect(ida).not.toBe(0);
      expect(idb).not.toBe(0);
      expect(ida).not.toBe(idb);
      const objs = objectsOf(g);
      const za = objs.find((o) => o.id === ida)!.z;
      const zb = objs.find((o) => o.id === idb)!.z;
      expect(Math.abs(za - zb)).toBeGreaterThanOrEqual(0.2);
      expect(za < zb ? 'a' : 'b').toBe(g.item.answer);
      // Occlusion check: where both objects' shapes (shrunk 10 % to stay off rounded edges)
      // cover a pixel centre, the mask shows the nearer one (or something nearer still).
      const near = objs.find((o) => o.id === (za < zb ? ida : idb))!;
      const far = objs.find((o) => o.id === (za < zb ? idb : ida))!;
      const covers = (o: ObjMeta, x: number, y: number): boolean => insideShape(o.shape as Shape, x + 0.5 - o.centre[0], y + 0.5 - o.centre[1], 0.9 * o.radius);
      for (let y = 0; y < W; y++) {
        for (let x = 0; x < W; x++) {
          if (!covers(near, x, y) || !covers(far, x, y)) continue;
          overlaps++;
          const shown = objs.find((o) => o.id === mask[y * W + x])!;
          expect(shown.z).toBeLessThanOrEqual(near.z);
        }
      }
    }
    expect(overlaps).toBeGreaterThan(0);
  });
});

describe('correspondence', () => {
  it('the mapping takes the reference point onto the same object, at the answer marker', () => {
    for (const g of itemsOf('correspondence')) {
      const [a, b] = g.item.images;
      const pts = pointsOf(g);
      const ref = pts.get('point')!.at;
      const { scale, offset } = g.item.meta.mapping as { scale: number; offset: [number, number] };
      const q: [number, number] = [Math.floor(scale * (ref[0] + 0.5) + offset[0]), Math.floor(scale * (ref[1] + 0.5) + offset[1])];
      expect(pts.get(g.item.answer)!.at).toEqual(q);
      expect(pts.get(g.item.answer)!.image).toBe(1);
      expect(at(b!.mask, W, q)).toBe(at(a!.mask, W, ref));
      expect(at(a!.mask, W, ref)).toBe(g.item.meta.objectId);
      // Every visible object centre in A lands on the same object in B when inside B.
      const stats = instanceStats(a!.mask, W);
      for (const o of objectsOf(g)) {
        const c = [Math.floor(o.centre[0]), Math.floor(o.centre[1])] as const;
        if (!stats.has(o.id) || at(a!.mask, W, c) !== o.id) continue;
        const m = [Math.floor(scale * (c[0] + 0.5) + offset[0]), Math.floor(scale * (c[1] + 0.5) + offset[1])] as const;
        if (m[0] < 0 || m[1] < 0 || m[0] >= W || m[1] >= W) continue;
        expect(at(b!.mask, W, m)).toBe(o.id);
      }
      // Distractors are well apart from the truth.
      for (const l of ['a', 'b', 'c', 'd']) {
        if (l === g.item.answer) continue;
        const d = pts.get(l)!.at;
        expect(Math.max(Math.abs(d[0] - q[0]), Math.abs(d[1] - q[1]))).toBeGreaterThanOrEqual(7);
      }
    }
  });
});

describe('temporal-correspondence', () => {
  it('the match lies on the same object in the first and last frame; ids are stable across frames', () => {
    for (const g of itemsOf('temporal-correspondence', 40)) {
      const frames = g.item.images;
      expect(frames).toHaveLength(4);
      const pair = g.item.labels.find((l) => l.kind === 'pointPair')!;
      if (pair.kind !== 'pointPair') throw new Error('no pair');
      const id = at(frames[0]!.mask, W, pair.a.at);
      expect(id).toBe(g.item.meta.objectId);
      expect(at(frames[pair.b.image]!.mask, W, pair.b.at)).toBe(id);
      expect(pointsOf(g).get(g.item.answer)!.at).toEqual(pair.b.at);
      const ids = objectsOf(g).map((o) => o.id).sort();
      for (const f of frames) expect([...new Set(f.mask)].filter((v) => v > 0).sort()).toEqual(ids);
      // Objects actually move between the first and last frame.
      expect(frames[0]!.mask).not.toEqual(frames[3]!.mask);
    }
  });
});

describe('referring', () => {
  it('the box is exactly the referred object\'s visible extent, and the expression picks it alone', () => {
    for (const g of itemsOf('referring')) {
      const mask = g.item.images[0]!.mask;
      const box = g.item.labels.find((l) => l.kind === 'box')!;
      if (box.kind !== 'box') throw new Error('no box');
      const id = g.item.meta.targetId as number;
      expect(box.text).toBe(g.item.meta.expression);
      const [x0, y0, x1, y1] = box.box;
      let inside = 0;
      let total = 0;
      const touch = { l: false, r: false, t: false, b: false };
      for (let y = 0; y < W; y++) {
        for (let x = 0; x < W; x++) {
          if (mask[y * W + x] !== id) continue;
          total++;
          if (x >= x0 && x < x1 && y >= y0 && y < y1) inside++;
          touch.l ||= x === x0;
          touch.r ||= x === x1 - 1;
          touch.t ||= y === y0;
          touch.b ||= y === y1 - 1;
        }
      }
      expect(inside).toBe(total);
      expect(touch).toEqual({ l: true, r: true, t: true, b: true });
      expect(at(mask, W, pointsOf(g).get(g.item.answer)!.at)).toBe(id);
      // Independent uniqueness check from the scene summary.
      const words = (g.item.meta.expression as string).split(' ');
      const objs = objectsOf(g);
      let pick: ObjMeta[];
      if (words.length === 3 && (words[1] === 'leftmost' || words[1] === 'rightmost')) {
        const same = objs.filter((o) => o.shape === words[2]).sort((p, q) => p.centre[0] - q.centre[0]);
        if (words[1] === 'rightmost') same.reverse();
        expect(same.length).toBeGreaterThanOrEqual(2);
        expect(Math.abs(same[0]!.centre[0] - same[1]!.centre[0])).toBeGreaterThanOrEqual(6);
        pick = [same[0]!];
      } else if (words.length === 4) {
        const same = objs.filter((o) => o.colour === words[2] && o.shape === words[3]).sort((p, q) => p.radius - q.radius);
        if (words[1] === 'large') same.reverse();
        expect(same.length).toBeGreaterThanOrEqual(2);
        const ratio = same[0]!.radius / same[1]!.radius;
        expect(words[1] === 'large' ? ratio : 1 / ratio).toBeGreaterThanOrEqual(1.3);
        pick = [same[0]!];
      } else {
        pick = objs.filter((o) => o.colour === words[1] && o.shape === words[2]);
      }
      expect(pick.map((o) => o.id)).toEqual([id]);
    }
  });

  it('the training curriculum letters K of the four objects: the target always, each letter once, on distinct objects', () => {
    for (const lettered of [1, 2, 3]) {
      const def = referringWithLetters(lettered);
      for (let i = 0; i < 40; i++) {
        const g = generateItem(def, SEED, 'test', i);
        const letters = g.item.labels.filter((l) => l.kind === 'point');
        expect(letters).toHaveLength(lettered);
        const names = letters.map((l) => (l.kind === 'point' ? l.name : ''));
        expect(new Set(names).size).toBe(lettered);
        expect(names).toContain(g.item.answer);
        const mask = g.item.images[0]!.mask;
        const ids = letters.map((l) => (l.kind === 'point' ? at(mask, W, l.at) : -1));
        expect(new Set(ids).size).toBe(lettered);
        expect(at(mask, W, pointsOf(g).get(g.item.answer)!.at)).toBe(g.item.meta.targetId);
      }
    }
    expect(() => referringWithLetters(0)).toThrow(/1\.\.4/);
  });

  it('all four lettered is the shipped task itself (same items for the same seed)', () => {
    const def = referringWithLetters(4);
    for (const g of itemsOf('referring', 10)) {
      expect(generateItem(def, SEED, 'test', g.index).item.labels).toEqual(g.item.labels);
    }
  });
});
