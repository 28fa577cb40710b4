/**
 * referring: four objects carry letter markers; "which marker is on {expression} ?" → the letter
 * on the referred object. The expression and the referred object's visible box are the grounding
 * ground truth (expression → box); the letters make it a four-choice question a VLM can answer.
 */
import { COLOURS, SHAPES, type Colour, type Shape } from '../attributes.ts';
import { LETTERS, type Letter } from '../markers.ts';
import { render } from '../raster.ts';
import { expressionText, resolveExpression, type Expression } from '../refer.ts';
import type { Rng } from '../rng.ts';
import type { ObjectSpec } from '../sample.ts';
import { boxLabel, classLabel, describeScene, pickOnObject, pointLabel, sampleWithTarget, visibleBox, withMarks, type Mark, type Pixel } from './common.ts';
import type { TaskContext, TaskDef, TaskItem } from './types.ts';

const OBJECTS = 4;

function otherPair(rng: Rng, c: Colour, s: Shape): ObjectSpec {
  for (;;) {
    const colour = rng.pick(COLOURS);
    const shape = rng.pick(SHAPES);
    if (colour !== c || shape !== s) return { colour, shape };
  }
}

/** Specs (target first) and the expression meant to pick the target. */
function plan(rng: Rng): { specs: ObjectSpec[]; expression: Expression } {
  const kind = rng.pick(['colour-shape', 'size', 'position'] as const);
  const c = rng.pick(COLOURS);
  const s = rng.pick(SHAPES);
  if (kind === 'colour-shape') {
    const specs: ObjectSpec[] = [{ colour: c, shape: s }];
    while (specs.length < OBJECTS) specs.push(otherPair(rng, c, s));
    return { specs, expression: { kind, colour: c, shape: s } };
  }
  if (kind === 'size') {
    const size = rng.pick(['small', 'large'] as const);
    const big: ObjectSpec = { colour: c, shape: s, size: [10, 12], z: [0, 0.4] };
    const small: ObjectSpec = { colour: c, shape: s, size: [6.5, 8], z: [0.4, 1] };
    const specs = size === 'large' ? [big, small] : [small, big];
    while (specs.length < OBJECTS) specs.push(otherPair(rng, c, s));
    return { specs, expression: { kind, size, colour: c, shape: s } };
  }
  const side = rng.pick(['leftmost', 'rightmost'] as const);
  const same = rng.int(1, 2);
  const specs: ObjectSpec[] = [{ shape: s, x: side === 'leftmost' ? [0, 30] : [34, 64] }];
  for (let i = 0; i < same; i++) specs.push({ shape: s });
  while (specs.length < OBJECTS) specs.push({ shapes: SHAPES.filter((x) => x !== s) });
  return { specs, expression: { kind, side, shape: s } };
}

/** `count` letters in alphabetical order: the answer and a random rest. */
function someLetters(rng: Rng, answer: string, count: number): readonly Letter[] {
  const rest = rng.shuffled(LETTERS.filter((l) => l !== answer)).slice(0, count - 1);
  return LETTERS.filter((l) => l === answer || rest.includes(l));
}

/** The probe task: all four objects lettered. */
export const referring: TaskDef = referringWithLetters(LETTERS.length);

/**
 * `lettered` of the four objects carry a letter (the target always does). Fewer than four is a
 * training curriculum for tools/micro-vlm (`build-world.ts --referring-letters`): with two letters
 * in the image, telling the two candidates apart pays off before the whole expression is resolved.
 */
export function referringWithLetters(lettered: number): TaskDef {
  if (!Number.isInteger(lettered) || lettered < 1 || lettered > LETTERS.length) {
    throw new Error(`referring: lettered objects must be 1..${LETTERS.length}, got ${lettered}`);
  }
  return {
    name: 'referring',
    description:
      lettered === LETTERS.length
        ? 'Four lettered objects; which letter marks the object the expression refers to? (expression → box ground truth)'
        : `Four objects, ${lettered} lettered (training curriculum); which letter marks the object the expression refers to?`,
    choices: LETTERS,
    imagesPerItem: 1,
    generate({ rng, answer }: TaskContext): TaskItem {
      for (;;) {
        const { specs, expression } = plan(rng);
        const { scene, targetId } = sampleWithTarget(rng, specs);
        if (resolveExpression(scene, expression) !== targetId) continue;
        const clean = render(scene);
        // Letters: the answer letter on the target, the rest on the other objects in random order.
        const others = rng.shuffled(scene.objects.map((o) => o.id).filter((id) => id !== targetId));
        const marks: Mark[] = [];
        const taken: Pixel[] = [];
        let ok = true;
        // All four draw nothing from the RNG, so the shipped sets' items stay as they were.
        const used = lettered === LETTERS.length ? LETTERS : someLetters(rng, answer, lettered);
        for (const letter of used) {
          const id = letter === answer ? targetId : others.shift()!;
          const at = pickOnObject(rng, clean, id, letter, taken, 6);
          if (!at) {
            ok = false;
            break;
          }
          taken.push(at);
          marks.push({ at, kind: letter });
        }
        if (!ok) continue;
        const text = expressionText(expression);
        return {
          prompt: `which marker is on ${text} ?`,
          answer,
          images: [withMarks(clean, marks)],
          labels: [boxLabel(0, visibleBox(clean, targetId), text), ...marks.map((m) => pointLabel(0, m.at, m.kind)), classLabel(answer)],
          maskIds: [[targetId]],
          meta: { expression: text, expressionKind: expression.kind, targetId, objects: describeScene(scene, clean) },
        };
      }
    },
  };
}
