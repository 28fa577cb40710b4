/**
 * count: "how many {colour} objects / {shape}s / objects are there ?", answers one … five.
 *
 * Distractors never match the query, and every object must be ≥ 70 % visible, so the count of
 * distinct mask ids of the queried class is the answer.
 */
import { COLOURS, SHAPE_PLURAL, SHAPES } from '../attributes.ts';
import { render } from '../raster.ts';
import { sampleScene, type ObjectSpec } from '../sample.ts';
import { NUMBER_WORDS } from '../vocabulary.ts';
import { classLabel, describeScene } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

const MAX_OBJECTS = 7;
const COUNT_SIZE = [6.5, 9.5] as const;

export const count: TaskDef = {
  name: 'count',
  description: 'Count the objects of a colour, of a shape, or all objects (1–5).',
  choices: NUMBER_WORDS,
  imagesPerItem: 1,
  generate({ rng, answer }: TaskContext): TaskItem {
    const n = NUMBER_WORDS.indexOf(answer as (typeof NUMBER_WORDS)[number]) + 1;
    const u = rng.next();
    const query = u < 0.4 ? 'colour' : u < 0.8 ? 'shape' : 'all';
    const specs: ObjectSpec[] = [];
    let prompt: string;
    let value: string | null = null;
    if (query === 'colour') {
      const c = rng.pick(COLOURS);
      value = c;
      prompt = `how many ${c} objects are there ?`;
      for (let i = 0; i < n; i++) specs.push({ colour: c });
      const others = COLOURS.filter((x) => x !== c);
      const k = rng.int(0, Math.min(3, MAX_OBJECTS - n));
      for (let i = 0; i < k; i++) specs.push({ colours: others });
    } else if (query === 'shape') {
      const s = rng.pick(SHAPES);
      value = s;
      prompt = `how many ${SHAPE_PLURAL[s]} are there ?`;
      for (let i = 0; i < n; i++) specs.push({ shape: s });
      const others = SHAPES.filter((x) => x !== s);
      const k = rng.int(0, Math.min(3, MAX_OBJECTS - n));
      for (let i = 0; i < k; i++) specs.push({ shapes: others });
    } else {
      prompt = 'how many objects are there ?';
      for (let i = 0; i < n; i++) specs.push({});
    }
    const scene = sampleScene(rng, rng.shuffled(specs), { minVisible: 0.7, size: COUNT_SIZE });
    const ids = scene.objects
      .filter((o) => query === 'all' || (query === 'colour' ? o.colour === value : o.shape === value))
      .map((o) => o.id);
    const image = render(scene);
    return {
      prompt,
      answer,
      images: [image],
      labels: [classLabel(answer)],
      maskIds: [ids],
      meta: { query, value, count: ids.length, countedIds: ids, objects: describeScene(scene, image) },
    };
  },
};
