/**
 * object-parts: one compound object made of named parts stacked top to bottom (a "house" is a
 * triangle on a square), each part its own instance in the mask with a mask label named
 * `<object>/<part>` — the PASCAL-Part naming the object-part LogitLens experiment reads
 * (src-main/experiments/compensation/parts-logit-lens.ts). Question: the shape of the top part.
 *
 * Part names are the world's shape words on purpose: the experiment ranks a part's name in the
 * LLM's vocabulary, and the bundled micro-VLM's word-level tokenizer knows only world words, so a
 * "roof" would be `<unk>`. Parts of one object have distinct shapes (each name picks one part)
 * and distinct colours (each part is visible as a region of its own). The parts of an object
 * stand at one depth and touch; the object is fully in frame.
 */
import { COLOURS, STYLES, SHAPES, type Shape } from '../attributes.ts';
import { render } from '../raster.ts';
import { IMAGE_SIZE, heightAt, radiusAt, type Scene, type SceneObject } from '../scene.ts';
import { shapeExtent } from '../shapes.ts';
import { boxLabel, classLabel, describeScene, visibleBox } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

/** Compound objects, parts listed top to bottom. */
export const PART_OBJECTS: readonly { name: string; parts: readonly Shape[] }[] = [
  { name: 'balloon', parts: ['circle', 'triangle'] },
  { name: 'robot', parts: ['circle', 'square'] },
  { name: 'totem', parts: ['circle', 'square', 'triangle'] },
  { name: 'cart', parts: ['square', 'circle'] },
  { name: 'flag', parts: ['square', 'triangle'] },
  { name: 'house', parts: ['triangle', 'square'] },
  { name: 'lamp', parts: ['triangle', 'circle'] },
  { name: 'tower', parts: ['diamond', 'square'] },
  { name: 'kite', parts: ['diamond', 'triangle'] },
];

/** The mask-label name of a part: `<object>/<part>`. */
export const partLabelName = (object: string, part: string): string => `${object}/${part}`;

/** A stack of parts as scene objects (ids 1…n, top first), placed at random but fully in frame. */
function placeParts(ctx: TaskContext, parts: readonly Shape[]): SceneObject[] {
  const { rng } = ctx;
  const z = rng.float(0, 0.5);
  const sizes = parts.map(() => rng.float(6, 8.5));
  const extents = parts.map((s, k) => shapeExtent(s, radiusAt(sizes[k]!, z)));
  const height = extents.reduce((h, e) => h + e.top + e.bottom, 0);
  const halfWidth = Math.max(...extents.map((e) => e.left));
  const top = rng.float(1, IMAGE_SIZE - 1 - height);
  const cx = rng.float(halfWidth + 1, IMAGE_SIZE - 1 - halfWidth);
  const colours = rng.shuffled([...COLOURS]);
  let y = top;
  return parts.map((shape, k) => {
    const cy = y + extents[k]!.top;
    y = cy + extents[k]!.bottom;
    // objectPose puts the centre at heightAt(z) + jitter: the jitter carries the stacking offset.
    return { id: k + 1, shape, colour: colours[k]!, style: rng.pick(STYLES), x: cx, z, size: sizes[k]!, jitter: cy - heightAt(z, IMAGE_SIZE), vx: 0, vz: 0 };
  });
}

export const objectParts: TaskDef = {
  name: 'object-parts',
  description: 'One object made of parts stacked top to bottom (mask labels <object>/<part>); name the shape of its top part.',
  choices: SHAPES,
  imagesPerItem: 1,
  generate(ctx: TaskContext): TaskItem {
    const { rng, answer } = ctx;
    const object = rng.pick(PART_OBJECTS.filter((o) => o.parts[0] === answer));
    const objects = placeParts(ctx, object.parts);
    const scene: Scene = { width: IMAGE_SIZE, height: IMAGE_SIZE, objects };
    const clean = render(scene);
    return {
      prompt: 'what shape is the object above ?',
      answer,
      images: [clean],
      labels: [boxLabel(0, visibleBox(clean, 1)), classLabel(answer)],
      maskIds: [objects.map((o) => o.id)],
      partMasks: objects.map((o) => ({ image: 0, ids: [o.id], name: partLabelName(object.name, o.shape) })),
      meta: { object: object.name, parts: object.parts, objects: describeScene(scene, clean) },
    };
  },
};
