/**
 * correspondence (BLINK-style): view A with a reference point, view B = a zoomed crop of A with
 * four lettered candidates; one is the exact image of the reference under the known view mapping.
 *
 * The reference is chosen so that its image lands on the same object in B (the crop keeps it in
 * frame), which the mapping + both masks verify before the item is accepted.
 */
import { render } from '../raster.ts';
import { mapPixel, IDENTITY_VIEW, type View } from '../scene.ts';
import { sampleScene, type ObjectSpec } from '../sample.ts';
import { safePixels, squareOn } from '../analysis.ts';
import { classLabel, describeScene, letterMarks, pointLabel, withMarks, type Pixel } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

export const correspondence: TaskDef = {
  name: 'correspondence',
  description: 'A reference point in view A; which of four points in view B (a zoomed crop) is the same scene point?',
  choices: ['a', 'b', 'c', 'd'],
  imagesPerItem: 2,
  generate({ rng, answer }: TaskContext): TaskItem {
    for (;;) {
      const specs: ObjectSpec[] = Array.from({ length: rng.int(3, 5) }, () => ({}));
      const scene = sampleScene(rng, specs, { minVisible: 0.5 });
      const scale = rng.float(1.15, 1.5);
      const span = scene.width / scale;
      const viewB: View = { scale, originX: rng.float(0, scene.width - span), originY: rng.float(0, scene.height - span) };
      const a = render(scene);
      const b = render(scene, { view: viewB });
      // Candidate references: on an object in A (7×7 clear for the ring), landing on the same
      // object in B with a 5×5 clear for the letter marker.
      const refs: [Pixel, Pixel, number][] = [];
      for (const o of rng.shuffled(scene.objects)) {
        for (const p of safePixels(a.mask, a.width, a.height, o.id, 3)) {
          const q = mapPixel(IDENTITY_VIEW, viewB, p[0], p[1]);
          if (squareOn(b.mask, b.width, b.height, q[0], q[1], 2, o.id)) refs.push([p, q, o.id]);
        }
        if (refs.length > 0) break;
      }
      if (refs.length === 0) continue;
      const [pa, pb, id] = rng.pick(refs);
      const letters = letterMarks(rng, b, pb, answer);
      if (!letters) continue;
      const offset = [-scale * viewB.originX, -scale * viewB.originY];
      return {
        prompt: 'which point in the second image is the same as the point in the first image ?',
        answer,
        images: [withMarks(a, [{ at: pa, kind: 'point' }]), withMarks(b, letters.marks)],
        labels: [
          pointLabel(0, pa, 'point'),
          ...letters.labels.map((l) => ({ ...l, image: 1 })),
          { kind: 'pointPair', a: { image: 0, at: pa }, b: { image: 1, at: pb }, name: 'match' },
          classLabel(answer),
        ],
        meta: {
          objectId: id,
          mapping: { scale, offset, formula: 'pB = scale * pA + offset (continuous coords, pixel centre = index + 0.5)' },
          viewB,
          objects: describeScene(scene, a),
        },
      };
    }
  },
};
