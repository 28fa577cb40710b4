/**
 * relative-depth: markers a and b on two objects at clearly different depths (|Δz| ≥ 0.2);
 * "which point is closer to the camera ?" → a / b. The closer object is drawn over the farther
 * one where they overlap, so occlusion, size and height all agree with the answer.
 */
import { render } from '../raster.ts';
import { objectPose } from '../scene.ts';
import { sampleScene, type ObjectSpec } from '../sample.ts';
import { classLabel, describeScene, pickOnObject, pointLabel, withMarks } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

const MIN_DZ = 0.2;

export const relativeDepth: TaskDef = {
  name: 'relative-depth',
  description: 'Two marked points (a, b) on objects at different depths; which is closer to the camera?',
  choices: ['a', 'b'],
  imagesPerItem: 1,
  generate({ rng, answer }: TaskContext): TaskItem {
    for (;;) {
      const k = rng.int(0, 2);
      const specs: ObjectSpec[] = [{}, {}];
      for (let i = 0; i < k; i++) specs.push({});
      const scene = sampleScene(rng, specs, { minVisible: 0.55 });
      const z1 = objectPose(scene.objects[0]!).z;
      const z2 = objectPose(scene.objects[1]!).z;
      if (Math.abs(z1 - z2) < MIN_DZ) continue;
      const nearId = z1 < z2 ? 1 : 2;
      const farId = 3 - nearId;
      const idA = answer === 'a' ? nearId : farId;
      const idB = answer === 'a' ? farId : nearId;
      const clean = render(scene);
      const atA = pickOnObject(rng, clean, idA, 'a');
      if (!atA) continue;
      const atB = pickOnObject(rng, clean, idB, 'b', [atA]);
      if (!atB) continue;
      const za = objectPose(scene.objects[idA - 1]!).z;
      const zb = objectPose(scene.objects[idB - 1]!).z;
      return {
        prompt: 'which point is closer to the camera ?',
        answer,
        images: [withMarks(clean, [{ at: atA, kind: 'a' }, { at: atB, kind: 'b' }])],
        labels: [pointLabel(0, atA, 'a'), pointLabel(0, atB, 'b'), classLabel(answer)],
        maskIds: [[idA, idB]],
        meta: { ids: { a: idA, b: idB }, depth: { a: za, b: zb }, closer: answer, objects: describeScene(scene, clean) },
      };
    }
  },
};
