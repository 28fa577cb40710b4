/** The probe task registry, in the order datasets are built and listed. */
import { count } from './count.ts';
import { correspondence } from './correspondence.ts';
import { objectParts } from './object-parts.ts';
import { colourAtPoint, shapeAtPoint, styleAtPoint } from './point-attribute.ts';
import { referring } from './referring.ts';
import { relation } from './relation.ts';
import { relativeDepth } from './relative-depth.ts';
import { temporalCorrespondence } from './temporal.ts';
import type { TaskDef } from './types.ts';

export const TASKS: readonly TaskDef[] = [
  colourAtPoint,
  shapeAtPoint,
  styleAtPoint,
  count,
  relation,
  relativeDepth,
  correspondence,
  temporalCorrespondence,
  referring,
  objectParts,
];

export function taskByName(name: string): TaskDef {
  const t = TASKS.find((x) => x.name === name);
  if (!t) throw new Error(`unknown world task "${name}" (known: ${TASKS.map((x) => x.name).join(', ')})`);
  return t;
}
