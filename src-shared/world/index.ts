/**
 * Public surface of the synthetic world: scenes and their rendering for ad-hoc use (the app's
 * world viewer), and the task registry + dataset builder used by tools/world/build-world.ts.
 */
export { COLOURS, SHAPES, STYLES, COLOUR_RGB, COLOUR_DARK, type Colour, type Shape, type Style } from './attributes.ts';
export { createRng, type Rng } from './rng.ts';
export { IMAGE_SIZE, IDENTITY_VIEW, mapPixel, objectPose, type Scene, type SceneObject, type View, type Pose } from './scene.ts';
export { sampleScene, type ObjectSpec, type SceneOptions } from './sample.ts';
export { render, type Raster, type RenderOptions } from './raster.ts';
export { drawMarker, LETTERS, type MarkerKind } from './markers.ts';
export { instanceStats, type InstanceStats } from './analysis.ts';
export { resolveExpression, parseExpression, expressionText, type Expression } from './refer.ts';
export { VOCABULARY, CHOICE_LETTERS, tokenize, unknownWords } from './vocabulary.ts';
export { TASKS, taskByName } from './tasks/index.ts';
export type { TaskDef, TaskItem } from './tasks/types.ts';
export { generateItem, toDatasetItem, buildManifest, type GeneratedItem, type Split } from './dataset.ts';
