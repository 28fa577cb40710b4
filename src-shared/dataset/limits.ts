/**
 * Length limits written into the dataset schemas (format.ts) and so into the contract: the
 * renderer and the engine validate with the same schemas, so these are fixed, not settings.
 * `src-main/engine/limits.ts` lists them beside the configurable limits.
 */
export const MAX_ID_CHARS = 512;
export const MAX_NAME_CHARS = 1000;
export const MAX_TEXT_CHARS = 20_000;
export const MAX_POLYGON_POINTS = 100_000;
export const MAX_POLYGONS = 10_000;
export const MAX_PATH_CHARS = 4096;

const fixed = (name: string, value: number, unit: string, why: string) => ({ name, value, unit, env: null, why });

export const CONTRACT_LIMITS = {
  idChars: fixed('item id length', MAX_ID_CHARS, 'characters', 'item ids name files and rows; src-shared/dataset/format.ts'),
  nameChars: fixed('label name length', MAX_NAME_CHARS, 'characters', 'label `name` and class values; src-shared/dataset/format.ts'),
  textChars: fixed('label text length', MAX_TEXT_CHARS, 'characters', 'box `text` (referring expressions) and prompts in manifests; src-shared/dataset/format.ts'),
  polygonPoints: fixed('polygon points', MAX_POLYGON_POINTS, 'points', 'one polygon of a mask label; src-shared/dataset/format.ts'),
  polygons: fixed('polygons per mask', MAX_POLYGONS, 'polygons', 'polygons of one mask label; src-shared/dataset/format.ts'),
  pathChars: fixed('file path length', MAX_PATH_CHARS, 'characters', 'image and mask paths in manifests; src-shared/dataset/format.ts'),
};
