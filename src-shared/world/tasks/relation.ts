/**
 * relation: "is the {A} {left of | right of | above | below} the {B} ?", yes / no.
 *
 * A and B are named by colour + shape and that pair is unique in the scene. The relation is
 * decided on object centres with an 8 px margin both ways: a "no" is always the clear opposite,
 * never a near tie.
 */
import { COLOURS, SHAPES, type Colour, type Shape } from '../attributes.ts';
import { render } from '../raster.ts';
import { objectPose, type Scene } from '../scene.ts';
import { sampleScene, type ObjectSpec } from '../sample.ts';
import { YES_NO } from '../vocabulary.ts';
import { boxLabel, classLabel, describeScene, visibleBox } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

export const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
export type Relation = (typeof RELATIONS)[number];
export const RELATION_MARGIN = 8;

/** +1 when the relation clearly holds, -1 when clearly the opposite holds, 0 when too close to call. */
export function relationHolds(scene: Scene, a: number, b: number, relation: Relation): number {
  const pa = objectPose(scene.objects[a - 1]!);
  const pb = objectPose(scene.objects[b - 1]!);
  const d =
    relation === 'left of' ? pb.cx - pa.cx : relation === 'right of' ? pa.cx - pb.cx : relation === 'above' ? pb.cy - pa.cy : pa.cy - pb.cy;
  return d >= RELATION_MARGIN ? 1 : d <= -RELATION_MARGIN ? -1 : 0;
}

export const relation: TaskDef = {
  name: 'relation',
  description: 'Is object A left of / right of / above / below object B? (centres, 8 px margin)',
  choices: YES_NO,
  imagesPerItem: 1,
  generate({ rng, answer }: TaskContext): TaskItem {
    const rel = rng.pick(RELATIONS);
    const want = answer === 'yes' ? 1 : -1;
    const ca = rng.pick(COLOURS);
    const sa = rng.pick(SHAPES);
    let cb: Colour;
    let sb: Shape;
    do {
      cb = rng.pick(COLOURS);
      sb = rng.pick(SHAPES);
    } while (cb === ca && sb === sa);
    // Nudge A and B towards the sides the answer needs, so rejection below rarely fires.
    const first = (rel === 'left of' || rel === 'above') === (want === 1);
    const horizontal = rel === 'left of' || rel === 'right of';
    const near = horizontal ? { x: [0, 34] as const } : { z: [0.55, 1] as const };
    const far = horizontal ? { x: [30, 64] as const } : { z: [0, 0.45] as const };
    const specA: ObjectSpec = { colour: ca, shape: sa, ...(first ? near : far) };
    const specB: ObjectSpec = { colour: cb, shape: sb, ...(first ? far : near) };
    for (;;) {
      const specs: ObjectSpec[] = [specA, specB];
      const k = rng.int(0, 2);
      for (let i = 0; i < k; i++) specs.push({});
      const scene = sampleScene(rng, specs, { minVisible: 0.6 });
      // Distractors must not share A's or B's name.
      const named = (c: Colour, s: Shape): number => scene.objects.filter((o) => o.colour === c && o.shape === s).length;
      if (named(ca, sa) !== 1 || named(cb, sb) !== 1) continue;
      if (relationHolds(scene, 1, 2, rel) !== want) continue;
      const image = render(scene);
      const prompt = `is the ${ca} ${sa} ${rel} the ${cb} ${sb} ?`;
      return {
        prompt,
        answer,
        images: [image],
        labels: [boxLabel(0, visibleBox(image, 1), `the ${ca} ${sa}`), boxLabel(0, visibleBox(image, 2), `the ${cb} ${sb}`), classLabel(answer)],
        maskIds: [[1, 2]],
        meta: { relation: rel, subjectId: 1, objectId: 2, objects: describeScene(scene, image) },
      };
    }
  },
};
