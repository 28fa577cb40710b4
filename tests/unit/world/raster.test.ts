import { describe, expect, it } from 'vitest';
import { COLOUR_DARK, COLOUR_RGB, COLOURS, type Colour } from '../../../src-shared/world/attributes.ts';
import { render } from '../../../src-shared/world/raster.ts';
import { createRng } from '../../../src-shared/world/rng.ts';
import { sampleScene } from '../../../src-shared/world/sample.ts';
import { mapPixel, IDENTITY_VIEW, objectPose, type Scene, type SceneObject } from '../../../src-shared/world/scene.ts';

const obj = (id: number, over: Partial<SceneObject>): SceneObject => ({
  id, shape: 'circle', colour: 'red', style: 'solid', x: 32, z: 0.5, size: 10, jitter: 0, vx: 0, vz: 0, ...over,
});

/** Pixels whose RGB is one of the colour's two shades, counted independently of the mask. */
function colourPixels(rgb: Uint8Array, c: Colour): number {
  const [a, b] = [COLOUR_RGB[c], COLOUR_DARK[c]];
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) {
    const m = (s: readonly number[]): boolean => rgb[i] === s[0] && rgb[i + 1] === s[1] && rgb[i + 2] === s[2];
    if (m(a) || m(b)) n++;
  }
  return n;
}

const maskCount = (mask: Uint8Array, id: number): number => mask.reduce((n, v) => n + (v === id ? 1 : 0), 0);

describe('world raster', () => {
  it('mask pixel counts equal drawn colour pixel counts for unoccluded objects', () => {
    const shapes = ['circle', 'square', 'triangle', 'diamond'] as const;
    const styles = ['solid', 'striped', 'dotted', 'checkered'] as const;
    for (let k = 0; k < 4; k++) {
      const scene: Scene = {
        width: 64,
        height: 64,
        objects: [
          obj(1, { shape: shapes[k], style: styles[k], colour: COLOURS[k], x: 16, z: 0.2 }),
          obj(2, { shape: shapes[(k + 1) % 4], style: styles[(k + 2) % 4], colour: COLOURS[k + 3], x: 46, z: 0.8 }),
        ],
      };
      const { rgb, mask } = render(scene);
      for (const o of scene.objects) {
        const n = maskCount(mask, o.id);
        expect(n).toBeGreaterThan(60);
        expect(colourPixels(rgb, o.colour)).toBe(n);
      }
      // Background pixels are never a palette shade.
      const objectPixels = scene.objects.reduce((s, o) => s + maskCount(mask, o.id), 0);
      expect(COLOURS.reduce((s, c) => s + colourPixels(rgb, c), 0)).toBe(objectPixels);
    }
  });

  it('patterned styles show both shades; solid shows one', () => {
    for (const style of ['solid', 'striped', 'dotted', 'checkered'] as const) {
      const { rgb } = render({ width: 64, height: 64, objects: [obj(1, { style, size: 12, z: 0 })] });
      expect(countShade(rgb, COLOUR_RGB.red)).toBeGreaterThan(0);
      expect(countShade(rgb, COLOUR_DARK.red) > 0).toBe(style !== 'solid');
    }
  });

  it('nearer objects occlude farther ones wherever both cover a pixel', () => {
    for (let s = 0; s < 30; s++) {
      const scene = sampleScene(createRng('occlusion', s), [{}, {}, {}, {}], { minVisible: 0.3 });
      const { mask } = render(scene);
      const alone = scene.objects.map((o) => render({ ...scene, objects: [o] }).mask);
      for (let p = 0; p < mask.length; p++) {
        const covering = scene.objects.filter((_, k) => alone[k]![p] !== 0);
        if (covering.length === 0) {
          expect(mask[p]).toBe(0);
          continue;
        }
        const nearest = covering.reduce((a, b) => (objectPose(b).z < objectPose(a).z ? b : a));
        expect(mask[p]).toBe(nearest.id);
      }
    }
  });

  it('farther objects are smaller and higher (perspective)', () => {
    const near = objectPose(obj(1, { z: 0.1 }));
    const far = objectPose(obj(2, { z: 0.9 }));
    expect(far.r).toBeLessThan(near.r);
    expect(far.cy).toBeLessThan(near.cy);
  });

  it('a zoomed view maps each visible object centre onto the same object', () => {
    for (let s = 0; s < 20; s++) {
      const rng = createRng('views', s);
      const scene = sampleScene(rng, [{}, {}, {}], { minVisible: 0.5 });
      const view = { scale: 1.3, originX: rng.float(0, 14), originY: rng.float(0, 14) };
      const a = render(scene).mask;
      const b = render(scene, { view }).mask;
      for (const o of scene.objects) {
        const p = objectPose(o);
        const pa: [number, number] = [Math.floor(p.cx), Math.floor(p.cy)];
        if (a[pa[1] * 64 + pa[0]] !== o.id) continue; // centre hidden by a nearer object
        const [x, y] = mapPixel(IDENTITY_VIEW, view, pa[0], pa[1]);
        if (x < 0 || y < 0 || x >= 64 || y >= 64) continue;
        expect(b[y * 64 + x]).toBe(o.id);
      }
    }
  });
});

function countShade(rgb: Uint8Array, s: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < rgb.length; i += 3) if (rgb[i] === s[0] && rgb[i + 1] === s[1] && rgb[i + 2] === s[2]) n++;
  return n;
}
