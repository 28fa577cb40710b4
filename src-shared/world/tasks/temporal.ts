/**
 * temporal-correspondence: four frames of moving objects. Frame 0 marks a point on an object;
 * frame 3 shows four lettered candidates; the answer is the same object-local point after the
 * motion. Object-local means relative to the shape: l = (p − centre) / radius, so a point keeps
 * its place on the shape when the object moves in depth and changes size.
 * Per-frame masks with stable ids are the mask-propagation ground truth.
 */
import { render } from '../raster.ts';
import { objectPose } from '../scene.ts';
import { sampleScene, type ObjectSpec } from '../sample.ts';
import { safePixels, squareOn } from '../analysis.ts';
import { classLabel, describeScene, letterMarks, pointLabel, withMarks, type Pixel } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

export const FRAMES = 4;

export const temporalCorrespondence: TaskDef = {
  name: 'temporal-correspondence',
  description: 'Four frames; a point marked on an object in the first frame — which of four points in the last frame is the same point?',
  choices: ['a', 'b', 'c', 'd'],
  imagesPerItem: FRAMES,
  generate({ rng, answer }: TaskContext): TaskItem {
    const last = FRAMES - 1;
    for (;;) {
      const specs: ObjectSpec[] = Array.from({ length: rng.int(2, 4) }, () => ({}));
      const scene = sampleScene(rng, specs, { minVisible: 0.45, frames: FRAMES, maxVx: 3.5, maxVz: 0.06 });
      const frames = Array.from({ length: FRAMES }, (_, f) => render(scene, { frame: f }));
      const f0 = frames[0]!;
      const fl = frames[last]!;
      const refs: [Pixel, Pixel, number][] = [];
      for (const o of rng.shuffled(scene.objects)) {
        const p0 = objectPose(o, 0);
        const pl = objectPose(o, last);
        for (const p of safePixels(f0.mask, f0.width, f0.height, o.id, 3)) {
          const lx = (p[0] + 0.5 - p0.cx) / p0.r;
          const ly = (p[1] + 0.5 - p0.cy) / p0.r;
          const q: Pixel = [Math.floor(pl.cx + lx * pl.r), Math.floor(pl.cy + ly * pl.r)];
          if (squareOn(fl.mask, fl.width, fl.height, q[0], q[1], 2, o.id)) refs.push([p, q, o.id]);
        }
        if (refs.length > 0) break;
      }
      if (refs.length === 0) continue;
      const [p, q, id] = rng.pick(refs);
      const letters = letterMarks(rng, fl, q, answer);
      if (!letters) continue;
      const images = frames.map((fr, f) => (f === 0 ? withMarks(fr, [{ at: p, kind: 'point' }]) : f === last ? withMarks(fr, letters.marks) : fr));
      return {
        prompt: 'which point in the last frame is the same as the point in the first frame ?',
        answer,
        images,
        labels: [
          pointLabel(0, p, 'point'),
          ...letters.labels.map((l) => ({ ...l, image: last })),
          { kind: 'pointPair', a: { image: 0, at: p }, b: { image: last, at: q }, name: 'match' },
          classLabel(answer),
        ],
        meta: {
          objectId: id,
          frames: FRAMES,
          motion: scene.objects.map((o) => ({ id: o.id, vx: o.vx, vz: o.vz })),
          objects: describeScene(scene, f0),
          objectsLast: describeScene(scene, fl, last),
        },
      };
    }
  },
};
