/**
 * Referring expressions and their resolver. Generators only emit an expression after
 * `resolveExpression` says it picks exactly one object, so "unique by construction" is checked
 * by the same code the tests use, not assumed.
 *
 * Forms: "the {colour} {shape}"; "the {small|large} {colour} {shape}" (≥ 2 such objects, the
 * extreme one ≥ 30 % bigger/smaller in apparent radius than every other); "the {leftmost|rightmost}
 * {shape}" (≥ 2 such objects, the extreme centre ≥ 6 px beyond every other).
 */
import { COLOURS, SHAPES, type Colour, type Shape } from './attributes.ts';
import { objectPose, type Scene, type SceneObject } from './scene.ts';

export const SIZE_RATIO = 1.3;
export const POSITION_GAP = 6;

export type Expression =
  | { kind: 'colour-shape'; colour: Colour; shape: Shape }
  | { kind: 'size'; size: 'small' | 'large'; colour: Colour; shape: Shape }
  | { kind: 'position'; side: 'leftmost' | 'rightmost'; shape: Shape };

export function expressionText(e: Expression): string {
  if (e.kind === 'colour-shape') return `the ${e.colour} ${e.shape}`;
  if (e.kind === 'size') return `the ${e.size} ${e.colour} ${e.shape}`;
  return `the ${e.side} ${e.shape}`;
}

export function parseExpression(text: string): Expression | null {
  const w = text.split(' ');
  if (w[0] !== 'the') return null;
  const isColour = (s: string | undefined): s is Colour => (COLOURS as readonly string[]).includes(s ?? '');
  const isShape = (s: string | undefined): s is Shape => (SHAPES as readonly string[]).includes(s ?? '');
  if (w.length === 3 && isColour(w[1]) && isShape(w[2])) return { kind: 'colour-shape', colour: w[1], shape: w[2] };
  if (w.length === 4 && (w[1] === 'small' || w[1] === 'large') && isColour(w[2]) && isShape(w[3]))
    return { kind: 'size', size: w[1], colour: w[2], shape: w[3] };
  if (w.length === 3 && (w[1] === 'leftmost' || w[1] === 'rightmost') && isShape(w[2])) return { kind: 'position', side: w[1], shape: w[2] };
  return null;
}

/** Extreme element by `key` (max), if it beats every other by the margin test. */
function uniqueExtreme(objs: SceneObject[], key: (o: SceneObject) => number, beats: (best: number, other: number) => boolean): number | null {
  if (objs.length < 2) return null;
  const sorted = objs.slice().sort((a, b) => key(b) - key(a));
  return beats(key(sorted[0]!), key(sorted[1]!)) ? sorted[0]!.id : null;
}

/** The id of the one object the expression denotes in frame 0, or null when none or ambiguous. */
export function resolveExpression(scene: Scene, e: Expression): number | null {
  if (e.kind === 'colour-shape') {
    const m = scene.objects.filter((o) => o.colour === e.colour && o.shape === e.shape);
    return m.length === 1 ? m[0]!.id : null;
  }
  if (e.kind === 'size') {
    const m = scene.objects.filter((o) => o.colour === e.colour && o.shape === e.shape);
    const r = (o: SceneObject): number => objectPose(o).r;
    return e.size === 'large'
      ? uniqueExtreme(m, r, (best, other) => best >= SIZE_RATIO * other)
      : uniqueExtreme(m, (o) => -r(o), (best, other) => -other >= SIZE_RATIO * -best);
  }
  const m = scene.objects.filter((o) => o.shape === e.shape);
  const x = (o: SceneObject): number => objectPose(o).cx;
  return e.side === 'rightmost'
    ? uniqueExtreme(m, x, (best, other) => best - other >= POSITION_GAP)
    : uniqueExtreme(m, (o) => -x(o), (best, other) => best - other >= POSITION_GAP);
}
