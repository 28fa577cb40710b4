/**
 * colour-at-point, shape-at-point, style: one `point` marker on an object; name its attribute.
 *
 * The answer fixes the target's attribute; distractors usually (80 %) take a different value, so
 * the question is answerable only by looking under the marker, not by the image's majority value.
 */
import { COLOURS, SHAPES, STYLES, type Colour, type Shape, type Style } from '../attributes.ts';
import { render } from '../raster.ts';
import type { Rng } from '../rng.ts';
import type { ObjectSpec } from '../sample.ts';
import { boxLabel, classLabel, describeScene, pickOnObject, pointLabel, sampleWithTarget, visibleBox, withMarks } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

type Attribute = 'colour' | 'shape' | 'style';

function specFor(attribute: Attribute, value: string, extra: ObjectSpec = {}): ObjectSpec {
  if (attribute === 'colour') return { ...extra, colour: value as Colour };
  if (attribute === 'shape') return { ...extra, shape: value as Shape };
  return { ...extra, style: value as Style };
}

function distractorSpec(rng: Rng, attribute: Attribute, value: string, values: readonly string[]): ObjectSpec {
  if (!rng.chance(0.8)) return {};
  return specFor(attribute, rng.pick(values.filter((v) => v !== value)));
}

function makeTask(name: string, attribute: Attribute, values: readonly string[], prompt: string, description: string): TaskDef {
  return {
    name,
    description,
    choices: values,
    imagesPerItem: 1,
    generate({ rng, answer }: TaskContext): TaskItem {
      // Patterns need room to show: style targets are near and large.
      const targetExtra: ObjectSpec = attribute === 'style' ? { size: [9.5, 12], z: [0, 0.45] } : { size: [8, 11.5] };
      for (;;) {
        const specs = [specFor(attribute, answer, targetExtra)];
        const n = rng.int(1, 3);
        for (let i = 0; i < n; i++) specs.push(distractorSpec(rng, attribute, answer, values));
        const { scene, targetId } = sampleWithTarget(rng, specs);
        const clean = render(scene);
        const at = pickOnObject(rng, clean, targetId, 'point');
        if (!at) continue;
        return {
          prompt,
          answer,
          images: [withMarks(clean, [{ at, kind: 'point' }])],
          labels: [pointLabel(0, at, 'point'), boxLabel(0, visibleBox(clean, targetId)), classLabel(answer)],
          maskIds: [[targetId]],
          meta: { targetId, attribute, objects: describeScene(scene, clean) },
        };
      }
    },
  };
}

export const colourAtPoint = makeTask(
  'colour-at-point',
  'colour',
  COLOURS,
  'what colour is the object at the marker ?',
  'A ringed marker sits on one object; name that object\'s colour.',
);

export const shapeAtPoint = makeTask(
  'shape-at-point',
  'shape',
  SHAPES,
  'what shape is the object at the marker ?',
  'A ringed marker sits on one object; name that object\'s shape.',
);

export const styleAtPoint = makeTask(
  'style',
  'style',
  STYLES,
  'what pattern is the object at the marker ?',
  'A ringed marker sits on one object; name its surface pattern (texture family).',
);
