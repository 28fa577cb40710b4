/**
 * The standing bad-input corpus (issue 23): one row per bad input — images, masks, labels,
 * questions, dataset manifests, model folders, preprocessor configs, job specs — each checked by
 * tests/helpers/bad-input-harness.ts for a clear error with a stable code, a live engine, an intact
 * database and unchanged reference data. Add rows here (or another table passed to
 * runBadInputCorpus) for new inputs.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bytesToBase64 } from '../../src-shared/dataset/mask-codec.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { type BadInputCase, type CorpusContext, INPUT_FIXTURES, type Send, datasetFolder, manifestOf, modelFolder, runBadInputCorpus } from '../helpers/bad-input-harness.ts';

const fixture = (rel: string) => readFileSync(join(INPUT_FIXTURES, rel));
const b64 = (rel: string) => bytesToBase64(fixture(rel));
const item = (images: string[] = ['x.png'], labels: unknown[] = [], id = 'a') => ({ id, images, labels });

/** Imports a dataset folder built in the case's dir, then asks for `datasets/image` of its item `a`. */
function imageOf(files: Record<string, Buffer | string>): (ctx: CorpusContext) => Send {
  return (ctx) => {
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(ctx.dir, name), bytes);
    writeFileSync(join(ctx.dir, 'dataset.json'), JSON.stringify(manifestOf([item([Object.keys(files)[0]!])])));
    const ds = ctx.engine.importDataset(ctx.dir);
    return { method: 'datasets/image', params: { datasetId: ds.id, itemId: 'a', index: 0 } };
  };
}

/** `datasets/import` of a folder holding `manifest` and the named fixture images. */
function importOf(manifest: unknown, images?: Record<string, string>): (ctx: CorpusContext) => Send {
  return (ctx) => ({ method: 'datasets/import', params: { path: datasetFolder(ctx.dir, manifest, images) } });
}

/** `importModel` of a copy of the bundled model with one JSON file edited. */
function modelWith(file: 'config.json' | 'preprocessor_config.json', edit: (json: Record<string, unknown>) => unknown): (ctx: CorpusContext) => Send {
  return (ctx) => {
    const dir = modelFolder(ctx.dir, (f, json) => (f === file ? (edit(json) as Record<string, unknown> | string | undefined) ?? json : undefined));
    return { action: (engine: Engine) => engine.importModel(dir) };
  };
}

const text = (json: Record<string, unknown>) => json.text_config as Record<string, unknown>;
const vision = (json: Record<string, unknown>) => json.vision_config as Record<string, unknown>;

/** A PNG header (signature + IHDR) claiming `w`×`h`, with no image data. */
function pngHeader(w: number, h: number): Buffer {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]).copy(b);
  b.writeUInt32BE(w, 16);
  b.writeUInt32BE(h, 20);
  b[24] = 8;
  b[25] = 2;
  return b;
}

const putLabel = (label: unknown, itemId = 'x') => (ctx: CorpusContext): Send => ({ method: 'labels/put', params: { datasetId: ctx.targetDatasetId, itemId, label } });
const question = (q: Record<string, unknown>, itemId = 'x') => (ctx: CorpusContext): Send => ({
  method: 'datasets/set-question',
  params: { datasetId: ctx.targetDatasetId, itemId, prompt: 'q', choices: null, answer: null, ...q },
});
const putMask = (png: string, extra: Record<string, unknown> = {}, itemId = 'x') => (ctx: CorpusContext): Send => ({
  method: 'labels/put-mask',
  params: { datasetId: ctx.targetDatasetId, itemId, image: 0, png, ...extra },
});
/** A box label on the target's item `x` (created by the case), for cases that need a non-mask label id. */
async function boxLabelId(ctx: CorpusContext): Promise<number> {
  const { callEngine } = await import('../helpers/engine.ts');
  return (await callEngine<{ id: number }>(ctx.engine, 'labels/put', { datasetId: ctx.targetDatasetId, itemId: 'x-png', label: { kind: 'class', value: 'c' } })).id;
}

const IMAGES: BadInputCase[] = [
  { name: 'image: 65 KB PNG bomb (23170² px) as an item image', send: imageOf({ 'bomb.png': fixture('bomb-pixels.png') }), code: 'bad-input', message: /image pixels 536848900 is over the limit of 89478485 pixels \(set LOUPE_MAX_IMAGE_PIXELS/ },
  { name: 'image: 24 KB PNG that decodes to 100 MB', send: imageOf({ 'bomb.png': fixture('bomb-ratio.png') }), code: 'bad-input', message: /decoded-size ratio \d+ is over the limit of 256 .*LOUPE_MAX_DECODED_RATIO/ },
  { name: 'image: over a lowered pixel limit', send: (ctx) => ({ method: 'datasets/image', params: { datasetId: ctx.targetDatasetId, itemId: 'x', index: 0 } }), env: { LOUPE_MAX_IMAGE_PIXELS: '40' }, code: 'bad-input', message: 'image pixels 48 is over the limit of 40 pixels (set LOUPE_MAX_IMAGE_PIXELS' },
  { name: 'image: over a lowered file-size limit', send: (ctx) => ({ method: 'datasets/image', params: { datasetId: ctx.targetDatasetId, itemId: 'x', index: 0 } }), env: { LOUPE_MAX_IMAGE_FILE_BYTES: '100' }, code: 'bad-input', message: 'LOUPE_MAX_IMAGE_FILE_BYTES' },
  { name: 'image: unparsable limit setting', send: (ctx) => ({ method: 'datasets/image', params: { datasetId: ctx.targetDatasetId, itemId: 'x', index: 0 } }), env: { LOUPE_MAX_IMAGE_PIXELS: 'lots' }, code: 'bad-input', message: 'setting LOUPE_MAX_IMAGE_PIXELS="lots" is not a positive number' },
  { name: 'image: text file named .png', send: imageOf({ 'a.png': 'hello, not an image' }), code: 'bad-input', message: 'cannot read the size of image a.png' },
  { name: 'image: PNG header only', send: imageOf({ 'a.png': pngHeader(4, 4) }), code: 'bad-input', message: 'cannot decode image a.png' },
  { name: 'image: PNG claiming 0×4 pixels', send: imageOf({ 'a.png': pngHeader(0, 4) }), code: 'bad-input', message: 'says it is 0×4 pixels' },
  { name: 'image: PNG header claiming 4e9 × 4e9', send: imageOf({ 'a.png': pngHeader(4_000_000_000, 4_000_000_000) }), code: 'bad-input', message: 'image pixels' },
  { name: 'image: JPEG with no frame', send: imageOf({ 'a.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xd9]) }), code: 'bad-input', message: 'cannot read the size of image a.jpg' },
  { name: 'image: WebP with an unknown chunk', send: imageOf({ 'a.webp': Buffer.concat([Buffer.from('RIFF\x20\0\0\0WEBPXXXX'), Buffer.alloc(24)]) }), code: 'bad-input', message: 'cannot read the size of image a.webp' },
  { name: 'image: JPEG truncated after its header', send: imageOf({ 'a.jpg': fixture('collide-a/x.jpg').subarray(0, 200) }), code: 'bad-input', message: /cannot (decode|read the size of) image a\.jpg/ },
  { name: 'image: index past the item', send: (ctx) => ({ method: 'datasets/image', params: { datasetId: ctx.targetDatasetId, itemId: 'x', index: 5 } }), code: 'not-found', message: 'has no image #5' },
  { name: 'image: unknown item', send: (ctx) => ({ method: 'datasets/image', params: { datasetId: ctx.targetDatasetId, itemId: 'nope', index: 0 } }), code: 'not-found', message: 'has no item nope' },
  { name: 'image: unknown dataset', send: { method: 'datasets/image', params: { datasetId: 'nope', itemId: 'x', index: 0 } }, code: 'not-found', message: 'no dataset with id nope' },
  { name: 'add-images: folder does not exist', send: (ctx) => ({ method: 'datasets/add-images', params: { datasetId: ctx.targetDatasetId, folder: join(ctx.dir, 'missing') } }), code: 'not-found', message: 'does not exist' },
  { name: 'add-images: folder without images', send: (ctx) => ({ method: 'datasets/add-images', params: { datasetId: ctx.targetDatasetId, folder: ctx.dir } }), code: 'bad-input', message: 'has no PNG, JPEG or WebP images' },
  { name: 'add-images: over the dataset item limit', send: (ctx) => ({ method: 'datasets/add-images', params: { datasetId: ctx.targetDatasetId, folder: join(INPUT_FIXTURES, 'collide-b') } }), env: { LOUPE_MAX_DATASET_ITEMS: '2' }, code: 'bad-input', message: 'dataset items 3 is over the limit of 2 items (set LOUPE_MAX_DATASET_ITEMS' },
  { name: 'add-images: bundled dataset', send: (ctx) => ({ method: 'datasets/add-images', params: { datasetId: ctx.bundledDatasetId, folder: join(INPUT_FIXTURES, 'collide-b') } }), code: 'bad-input', message: 'read-only' },
  { name: 'add-images: unknown dataset', send: { method: 'datasets/add-images', params: { datasetId: 'nope', folder: '/tmp' } }, code: 'not-found', message: 'no dataset with id nope' },
];

const MASKS: BadInputCase[] = [
  { name: 'mask: 65 KB PNG bomb drawn on an 8×6 image', send: putMask(b64('bomb-pixels.png')), code: 'bad-input', message: 'mask is 23170×23170 but image #0 of x is 8×6' },
  { name: 'mask: PNG bomb of the right size is over the mask limit', send: putMask(b64('la8.png'), {}, 'x-png'), env: { LOUPE_MAX_MASK_PIXELS: '10' }, code: 'bad-input', message: 'mask pixels 20 is over the limit of 10 pixels (set LOUPE_MAX_MASK_PIXELS' },
  { name: 'mask: a JPEG of the right size', send: putMask(b64('collide-a/x.jpg')), code: 'bad-input', message: 'the mask is a JPEG, not a PNG' },
  { name: 'mask: wrong size', send: putMask(b64('la8.png')), code: 'bad-input', message: 'mask is 5×4 but image #0 of x is 8×6' },
  { name: 'mask: bytes that are no image', send: putMask(bytesToBase64(new TextEncoder().encode('hello world, no png'))), code: 'bad-input', message: 'cannot read the size of the mask' },
  { name: 'mask: PNG header without data', send: putMask(bytesToBase64(pngHeader(8, 6))), code: 'bad-input', message: 'the mask is not a readable PNG' },
  { name: 'mask: not base64', send: putMask('@@@ not base64 @@@'), code: 'bad-input', message: 'not valid base64' },
  { name: 'mask: image index past the item', send: putMask(b64('la8.png'), { image: 3 }, 'x-png'), code: 'bad-input', message: 'has 1 image(s); no image #3' },
  { name: 'mask: replacing a label that is not a mask', send: async (ctx) => ({ method: 'labels/put-mask', params: { datasetId: ctx.targetDatasetId, itemId: 'x-png', image: 0, png: b64('la8.png'), id: await boxLabelId(ctx) } }), code: 'bad-input', message: 'is a class, not a mask' },
  { name: 'mask: replacing a label of another dataset', send: (ctx) => ({ method: 'labels/put-mask', params: { datasetId: ctx.targetDatasetId, itemId: 'x-png', image: 0, png: b64('la8.png'), id: ctx.refLabelId } }), code: 'not-found', message: `no label` },
  { name: 'mask: on a bundled dataset', send: (ctx) => ({ method: 'labels/put-mask', params: { datasetId: ctx.bundledDatasetId, itemId: ctx.bundledItemId, image: 0, png: b64('la8.png') } }), code: 'bad-input', message: 'read-only' },
  { name: 'mask: base64 longer than the contract allows', send: putMask('A'.repeat(900_004)), code: 'invalid-message', message: 'png' },
  { name: 'mask: unknown item', send: putMask(b64('la8.png'), {}, 'nope'), code: 'not-found', message: 'has no item nope' },
  { name: 'labels/mask: unknown label', send: { method: 'labels/mask', params: { id: 987654 } }, code: 'not-found', message: '987654' },
  { name: 'labels/mask: label that is not a mask', send: (ctx) => ({ method: 'labels/mask', params: { id: ctx.refLabelId } }), code: 'bad-input', message: 'is a box, not a mask' },
  { name: 'manifest mask: the 65 KB bomb', send: importOf(manifestOf([item(['x.png'], [{ kind: 'mask', image: 0, file: 'm.png' }])]), { 'x.png': 'collide-a/x.png', 'm.png': 'bomb-pixels.png' }), code: 'bad-input', message: /mask file m\.png of item a \(23170×23170\): mask pixels 536848900 is over the limit .*LOUPE_MAX_MASK_PIXELS/ },
  { name: 'manifest mask: decodes to 100 MB from 24 KB', send: importOf(manifestOf([item(['x.png'], [{ kind: 'mask', image: 0, file: 'm.png' }])]), { 'x.png': 'collide-a/x.png', 'm.png': 'bomb-ratio.png' }), code: 'bad-input', message: 'decoded-size ratio' },
  { name: 'manifest mask: a JPEG', send: importOf(manifestOf([item(['x.png'], [{ kind: 'mask', image: 0, file: 'm.jpg' }])]), { 'x.png': 'collide-a/x.png', 'm.jpg': 'collide-a/x.jpg' }), code: 'bad-input', message: 'is a JPEG, not a PNG' },
  { name: 'manifest mask: missing file', send: importOf(manifestOf([item(['x.png'], [{ kind: 'mask', image: 0, file: 'm.png' }])])), code: 'bad-input', message: 'mask file m.png is missing' },
  { name: 'manifest mask: outside the folder', send: importOf(manifestOf([item(['x.png'], [{ kind: 'mask', image: 0, file: '../../etc/passwd' }])])), code: 'bad-input', message: 'leaves the dataset folder' },
  { name: 'manifest mask: other size than its image', send: importOf(manifestOf([item(['x.png'], [{ kind: 'mask', image: 0, file: 'm.png' }])]), { 'x.png': 'collide-b/x.png', 'm.png': 'la8.png' }), code: 'bad-input', message: 'is 5×4 but image #0 is 3×7' },
];

const LABELS: BadInputCase[] = [
  { name: 'label: point right of the image', send: putLabel({ kind: 'point', image: 0, at: [8, 2] }), code: 'bad-input', message: 'point (8, 2) lies outside the 8×6 image' },
  { name: 'label: point above the image', send: putLabel({ kind: 'point', image: 0, at: [3, -1] }), code: 'bad-input', message: 'outside the 8×6 image' },
  { name: 'label: point far away', send: putLabel({ kind: 'point', image: 0, at: [1e12, 1e12] }), code: 'bad-input', message: 'outside the 8×6 image' },
  { name: 'label: point on a missing image', send: putLabel({ kind: 'point', image: 1, at: [1, 1] }), code: 'bad-input', message: 'image #1 does not exist' },
  { name: 'label: point pair, b outside', send: putLabel({ kind: 'pointPair', a: { image: 0, at: [1, 1] }, b: { image: 0, at: [3, 6] } }), code: 'bad-input', message: 'point b on image #0 (3, 6) lies outside' },
  { name: 'label: point pair, a on a missing image', send: putLabel({ kind: 'pointPair', a: { image: 2, at: [1, 1] }, b: { image: 0, at: [3, 3] } }), code: 'bad-input', message: 'image #2 does not exist' },
  { name: 'label: box wider than the image', send: putLabel({ kind: 'box', image: 0, box: [0, 0, 9, 6] }), code: 'bad-input', message: 'box [0, 0, 9, 6] leaves the 8×6 image' },
  { name: 'label: box starting left of the image', send: putLabel({ kind: 'box', image: 0, box: [-2, 0, 4, 4] }), code: 'bad-input', message: 'leaves the 8×6 image' },
  { name: 'label: inverted box', send: putLabel({ kind: 'box', image: 0, box: [4, 1, 2, 3] }), code: 'bad-input', message: 'empty or inverted' },
  { name: 'label: empty box', send: putLabel({ kind: 'box', image: 0, box: [2, 1, 2, 3] }), code: 'bad-input', message: 'empty or inverted' },
  { name: 'label: polygon vertex outside', send: putLabel({ kind: 'mask', image: 0, file: 'masks/m.png', polygons: [[[0, 0], [9, 0], [0, 5]]] }), code: 'bad-input', message: 'polygon vertex (9, 0)' },
  { name: 'label: polygon of two points', send: putLabel({ kind: 'mask', image: 0, file: 'masks/m.png', polygons: [[[0, 0], [1, 1]]] }), code: 'invalid-message', message: 'polygons' },
  { name: 'label: mask file outside the folder', send: putLabel({ kind: 'mask', image: 0, file: '../../etc/passwd' }), code: 'bad-input', message: 'outside the dataset folder' },
  { name: 'label: NaN coordinate', send: putLabel({ kind: 'point', image: 0, at: [Number.NaN, 1] }), code: 'invalid-message', message: 'at' },
  { name: 'label: infinite coordinate', send: putLabel({ kind: 'point', image: 0, at: [Number.POSITIVE_INFINITY, 1] }), code: 'invalid-message', message: 'at' },
  { name: 'label: coordinate as a string', send: putLabel({ kind: 'point', image: 0, at: ['1', 1] }), code: 'invalid-message', message: 'at' },
  { name: 'label: unknown kind', send: putLabel({ kind: 'blob', image: 0 }), code: 'invalid-message', message: 'kind' },
  { name: 'label: box of three numbers', send: putLabel({ kind: 'box', image: 0, box: [1, 2, 3] }), code: 'invalid-message', message: 'box' },
  { name: 'label: negative image index', send: putLabel({ kind: 'point', image: -1, at: [1, 1] }), code: 'invalid-message', message: 'image' },
  { name: 'label: name longer than the contract allows', send: putLabel({ kind: 'point', image: 0, at: [1, 1], name: 'n'.repeat(1001) }), code: 'invalid-message', message: 'name' },
  { name: 'label: unknown item', send: putLabel({ kind: 'class', value: 'c' }, 'nope'), code: 'not-found', message: 'has no item nope' },
  { name: 'label: unknown dataset', send: { method: 'labels/put', params: { datasetId: 'nope', itemId: 'x', label: { kind: 'class', value: 'c' } } }, code: 'not-found', message: 'no dataset with id nope' },
  { name: 'label: replacing a label of another dataset', send: (ctx) => ({ method: 'labels/put', params: { datasetId: ctx.targetDatasetId, itemId: 'x', id: ctx.refLabelId, label: { kind: 'class', value: 'c' } } }), code: 'not-found', message: 'no label' },
  { name: 'label: replacing a label that does not exist', send: putLabel({ kind: 'class', value: 'c' }), code: 'not-found', message: '' },
  { name: 'label: over the per-item label limit', send: (ctx) => (ctx.engine.store.labels.put(ctx.targetDatasetId, 'x-png', { kind: 'class', value: 'c' }), putLabel({ kind: 'class', value: 'd' }, 'x-png')(ctx)), env: { LOUPE_MAX_LABELS_PER_ITEM: '1' }, code: 'bad-input', message: /labels per item \d+ is over the limit of 1 labels \(set LOUPE_MAX_LABELS_PER_ITEM/ },
  { name: 'label: put on a bundled dataset', send: (ctx) => ({ method: 'labels/put', params: { datasetId: ctx.bundledDatasetId, itemId: ctx.bundledItemId, label: { kind: 'class', value: 'c' } } }), code: 'bad-input', message: 'read-only' },
  { name: 'label: replace a bundled ground-truth label', send: (ctx) => ({ method: 'labels/put', params: { datasetId: ctx.bundledDatasetId, itemId: ctx.bundledItemId, id: ctx.bundledLabelId, label: { kind: 'class', value: 'c' } } }), code: 'bad-input', message: 'read-only' },
  { name: 'label: delete a bundled ground-truth label', send: (ctx) => ({ method: 'labels/delete', params: { id: ctx.bundledLabelId } }), code: 'bad-input', message: 'read-only' },
  { name: 'label: delete an unknown label', send: { method: 'labels/delete', params: { id: 987654 } }, code: 'not-found', message: '987654' },
  { name: 'label: delete id -1', send: { method: 'labels/delete', params: { id: -1 } }, code: 'invalid-message', message: 'id' },
];
// "replacing a label that does not exist" needs an id: give it one that is never allocated.
LABELS.find((c) => c.name === 'label: replacing a label that does not exist')!.send = (ctx) => ({ method: 'labels/put', params: { datasetId: ctx.targetDatasetId, itemId: 'x', id: 987654, label: { kind: 'class', value: 'c' } } });

const QUESTIONS: BadInputCase[] = [
  { name: 'question: answer not among the choices', send: question({ choices: ['a', 'b'], answer: 'c' }), code: 'bad-input', message: 'the answer "c" is not one of the choices' },
  { name: 'question: duplicate choices', send: question({ choices: ['a', 'a'] }), code: 'bad-input', message: 'choice "a" appears twice' },
  { name: 'question: empty choice', send: question({ choices: ['a', '  '] }), code: 'bad-input', message: 'a choice is empty' },
  { name: 'question: 65 choices', send: question({ choices: Array.from({ length: 65 }, (_, i) => `c${i}`) }), code: 'invalid-message', message: 'choices' },
  { name: 'question: prompt over 4000 characters', send: question({ prompt: 'p'.repeat(4001) }), code: 'invalid-message', message: 'prompt' },
  { name: 'question: prompt as a number', send: question({ prompt: 42 }), code: 'invalid-message', message: 'prompt' },
  { name: 'question: unknown item', send: question({}, 'nope'), code: 'not-found', message: 'has no item nope' },
  { name: 'question: bundled dataset', send: (ctx) => ({ method: 'datasets/set-question', params: { datasetId: ctx.bundledDatasetId, itemId: ctx.bundledItemId, prompt: 'q', choices: null, answer: null } }), code: 'bad-input', message: 'read-only' },
  { name: 'question: extra field', send: question({ hint: 'x' }), code: 'invalid-message', message: 'hint' },
];

const MANIFESTS: BadInputCase[] = [
  { name: 'manifest: not JSON', send: importOf('{ "format": '), code: 'bad-input', message: 'is not valid JSON' },
  { name: 'manifest: missing', send: (ctx) => ({ method: 'datasets/import', params: { path: ctx.dir } }), code: 'not-found', message: 'no dataset manifest' },
  { name: 'manifest: a JSON list', send: importOf('[]'), code: 'bad-input', message: 'is malformed' },
  { name: 'manifest: wrong format', send: importOf(manifestOf([], { format: 'coco' })), code: 'bad-input', message: 'is malformed' },
  { name: 'manifest: duplicate item ids', send: importOf(manifestOf([item(), item()])), code: 'bad-input', message: 'item id "a" appears twice' },
  { name: 'manifest: absolute image path', send: importOf(manifestOf([item(['/etc/passwd'])])), code: 'bad-input', message: 'leaves the dataset folder' },
  { name: 'manifest: missing image', send: importOf(manifestOf([item(['nope.png'])])), code: 'bad-input', message: 'image nope.png is missing' },
  { name: 'manifest: over the item limit', send: importOf(manifestOf([item(), item(['x.png'], [], 'b')])), env: { LOUPE_MAX_DATASET_ITEMS: '1' }, code: 'bad-input', message: 'dataset items 2 is over the limit of 1 items (set LOUPE_MAX_DATASET_ITEMS' },
  { name: 'manifest: over the size limit', send: importOf(manifestOf([item()])), env: { LOUPE_MAX_MANIFEST_BYTES: '50' }, code: 'bad-input', message: 'LOUPE_MAX_MANIFEST_BYTES' },
  { name: 'manifest: over the images-per-item limit', send: importOf(manifestOf([item(['x.png', 'x.png'])])), env: { LOUPE_MAX_IMAGES_PER_ITEM: '1' }, code: 'bad-input', message: 'images per item 2 is over the limit of 1 images' },
  { name: 'manifest: box off its image', send: importOf(manifestOf([item(['x.png'], [{ kind: 'box', image: 0, box: [0, 0, 6, 4] }])])), code: 'bad-input', message: 'box [0, 0, 6, 4] leaves the 5×4 image' },
  { name: 'manifest: point on a missing image', send: importOf(manifestOf([item(['x.png'], [{ kind: 'point', image: 2, at: [1, 1] }])])), code: 'bad-input', message: 'image #2 does not exist' },
  { name: 'manifest: label image of a bomb', send: importOf(manifestOf([item(['b.png'], [{ kind: 'point', image: 0, at: [1, 1] }])]), { 'b.png': 'bomb-pixels.png' }), code: 'bad-input', message: 'image pixels 536848900' },
  { name: 'manifest: item id over 512 characters', send: importOf(manifestOf([item(['x.png'], [], 'i'.repeat(513))])), code: 'bad-input', message: 'is malformed' },
  { name: 'manifest: items not a list', send: importOf(manifestOf([], { items: { a: 1 } })), code: 'bad-input', message: 'is malformed' },
  { name: 'export: unknown dataset', send: { method: 'datasets/export', params: { datasetId: 'nope', format: 'loupe' } }, code: 'not-found', message: 'no dataset with id nope' },
  { name: 'export: bundled dataset', send: (ctx) => ({ method: 'datasets/export', params: { datasetId: ctx.bundledDatasetId, format: 'loupe' } }), code: 'bad-input', message: 'read-only' },
];

const MODELS: BadInputCase[] = [
  { name: 'config: a billion text layers', send: modelWith('config.json', (j) => void (text(j).num_hidden_layers = 1e9)), code: 'bad-input', message: 'config.json field text_config.num_hidden_layers: model layers 1000000000 is over the limit of 512 layers (set LOUPE_MAX_MODEL_LAYERS' },
  { name: 'config: a million vision layers', send: modelWith('config.json', (j) => void (vision(j).num_hidden_layers = 1e6)), code: 'bad-input', message: 'vision_config.num_hidden_layers' },
  { name: 'config: hidden size of ten million', send: modelWith('config.json', (j) => void (text(j).hidden_size = 1e7)), code: 'bad-input', message: 'LOUPE_MAX_MODEL_HIDDEN_SIZE' },
  { name: 'config: 100000 heads', send: modelWith('config.json', (j) => void (text(j).num_attention_heads = 100_000)), code: 'bad-input', message: 'LOUPE_MAX_MODEL_HEADS' },
  { name: 'config: a billion-token vocabulary', send: modelWith('config.json', (j) => void (text(j).vocab_size = 1e9)), code: 'bad-input', message: 'LOUPE_MAX_MODEL_VOCAB' },
  { name: 'config: 1e12 positions', send: modelWith('config.json', (j) => void (text(j).max_position_embeddings = 1e12)), code: 'bad-input', message: 'LOUPE_MAX_MODEL_POSITIONS' },
  { name: 'config: heads not a multiple of KV heads', send: modelWith('config.json', (j) => void (text(j).num_key_value_heads = 3)), code: 'bad-input', message: 'num_attention_heads 4 is not a multiple of text_config.num_key_value_heads 3' },
  { name: 'config: hidden size not a multiple of heads', send: modelWith('config.json', (j) => void (delete text(j).head_dim, (text(j).hidden_size = 130))), code: 'bad-input', message: 'hidden_size 130 is not a multiple of' },
  { name: 'config: layers as a string', send: modelWith('config.json', (j) => void (text(j).num_hidden_layers = '4')), code: 'bad-input', message: 'text_config.num_hidden_layers is "4", not a positive integer' },
  { name: 'config: negative layers', send: modelWith('config.json', (j) => void (text(j).num_hidden_layers = -1)), code: 'bad-input', message: 'not a positive integer' },
  { name: 'config: fractional heads', send: modelWith('config.json', (j) => void (text(j).num_attention_heads = 2.5)), code: 'bad-input', message: 'not a positive integer' },
  { name: 'config: text_config a string', send: modelWith('config.json', (j) => void (j.text_config = 'x')), code: 'bad-input', message: 'text_config is "x", not an object' },
  { name: 'config: null', send: modelWith('config.json', () => 'null'), code: 'bad-input', message: 'config.json is not a JSON object' },
  { name: 'config: a list', send: modelWith('config.json', () => '[1, 2]'), code: 'bad-input', message: 'config.json is not a JSON object' },
  { name: 'config: vision image size 100000', send: modelWith('config.json', (j) => void (vision(j).image_size = 100_000)), code: 'bad-input', message: 'LOUPE_MAX_PROCESSOR_SIDE' },
  { name: 'config: unknown model type', send: modelWith('config.json', (j) => void (j.model_type = 'whisper')), code: 'bad-input', message: 'unsupported model_type "whisper"' },
  { name: 'config: not JSON', send: modelWith('config.json', () => '{ "model_type": '), code: 'bad-input', message: 'config.json is not valid JSON' },
  { name: 'preprocessor: 8000-px crop', send: modelWith('preprocessor_config.json', (j) => void (j.crop_size = { height: 8000, width: 8000 })), code: 'bad-input', message: 'preprocessor_config.json field crop_size.height: preprocessor image side 8000 is over the limit of 4096 pixels (set LOUPE_MAX_PROCESSOR_SIDE' },
  { name: 'preprocessor: 8000-px shortest edge', send: modelWith('preprocessor_config.json', (j) => void (j.size = { shortest_edge: 8000 })), code: 'bad-input', message: 'size.shortest_edge' },
  { name: 'preprocessor: size as one number', send: modelWith('preprocessor_config.json', (j) => void (j.size = 8000)), code: 'bad-input', message: 'preprocessor_config.json field size:' },
  { name: 'preprocessor: a billion max_pixels', send: modelWith('preprocessor_config.json', (j) => void (j.max_pixels = 1e9)), code: 'bad-input', message: 'max_pixels: 1000000000 pixels is over the limit' },
  { name: 'preprocessor: crop as a word', send: modelWith('preprocessor_config.json', (j) => void (j.crop_size = 'big')), code: 'bad-input', message: 'crop_size is "big", not a size' },
  { name: 'preprocessor: negative height', send: modelWith('preprocessor_config.json', (j) => void (j.crop_size = { height: -5, width: 64 })), code: 'bad-input', message: 'crop_size.height is -5, not a positive size' },
  { name: 'preprocessor: 9000-px grid pinpoint', send: modelWith('preprocessor_config.json', (j) => void (j.image_grid_pinpoints = [[336, 672], [336, 9000]])), code: 'bad-input', message: 'image_grid_pinpoints[1][1]' },
  { name: 'preprocessor: pinpoints not a list', send: modelWith('preprocessor_config.json', (j) => void (j.image_grid_pinpoints = 'x')), code: 'bad-input', message: 'image_grid_pinpoints is not a list' },
  { name: 'preprocessor: not JSON', send: modelWith('preprocessor_config.json', () => '{'), code: 'bad-input', message: 'preprocessor_config.json is not valid JSON' },
  {
    name: 'preprocessor: 8000 px set after import, refused at run start',
    send: (ctx) => {
      const dir = modelFolder(ctx.dir, () => undefined);
      const model = ctx.engine.importModel(dir);
      const pre = JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8'));
      writeFileSync(join(dir, 'preprocessor_config.json'), JSON.stringify({ ...pre, crop_size: { height: 8000, width: 8000 } }));
      return { method: 'jobs/start', params: { kind: 'vlm-forward', modelId: model.id, datasetId: ctx.bundledDatasetId, spec: { limit: 1 } } };
    },
    code: 'bad-input',
    message: 'preprocessor_config.json field crop_size.height',
  },
  {
    name: 'config: a billion layers set after import, refused at run start',
    send: (ctx) => {
      const dir = modelFolder(ctx.dir, () => undefined);
      const model = ctx.engine.importModel(dir);
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, text_config: { ...cfg.text_config, num_hidden_layers: 1e9 } }));
      return { method: 'jobs/start', params: { kind: 'vlm-forward', modelId: model.id, datasetId: ctx.bundledDatasetId, spec: { limit: 1, taps: { imageKV: true } } } };
    },
    code: 'bad-input',
    message: 'LOUPE_MAX_MODEL_LAYERS',
  },
  { name: 'model folder: missing', send: (ctx) => ({ action: (e: Engine) => e.importModel(join(ctx.dir, 'none')) }), code: 'not-found', message: 'does not exist' },
  {
    name: 'model folder: no onnx/',
    send: (ctx) => {
      mkdirSync(join(ctx.dir, 'm'));
      for (const f of ['config.json', 'preprocessor_config.json']) copyFileSync(join(modelFolder(join(ctx.dir), () => undefined), f), join(ctx.dir, 'm', f));
      return { action: (e: Engine) => e.importModel(join(ctx.dir, 'm')) };
    },
    code: 'bad-input',
    message: 'has no onnx/ subfolder',
  },
];

const SPECS: BadInputCase[] = [
  { name: 'spec: unknown job kind', send: { method: 'jobs/start', params: { kind: 'mine-bitcoin', modelId: 'm', datasetId: 'd' } }, code: 'invalid-message', message: 'kind' },
  { name: 'spec: unknown model', send: (ctx) => ({ method: 'jobs/start', params: { kind: 'encode-images', modelId: 'nope', datasetId: ctx.bundledDatasetId } }), code: 'not-found', message: 'nope' },
  { name: 'spec: unknown dataset', send: (ctx) => ({ method: 'jobs/start', params: { kind: 'encode-images', modelId: ctx.modelId, datasetId: 'nope' } }), code: 'not-found', message: 'nope' },
  { name: 'spec: negative limit', send: (ctx) => ({ method: 'jobs/start', params: { kind: 'encode-images', modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, spec: { limit: -1 } } }), code: 'invalid-message', message: 'limit' },
  { name: 'spec: a string where the spec goes', send: (ctx) => ({ method: 'jobs/start', params: { kind: 'vlm-forward', modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, spec: 'all' } }), code: 'invalid-message', message: 'spec' },
  { name: 'spec: unknown variant', send: (ctx) => ({ method: 'jobs/start', params: { kind: 'vlm-forward', modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, spec: { variant: 'fp64' } } }), code: 'invalid-message', message: 'variant' },
  { name: 'spec: missing variant file', send: (ctx) => ({ method: 'jobs/start', params: { kind: 'vlm-forward', modelId: ctx.modelId, datasetId: ctx.bundledDatasetId, spec: { variant: 'q4' } } }), code: 'bad-input', message: 'no onnx/' },
  { name: 'runs/get: unknown run', send: { method: 'runs/get', params: { runId: 'nope' } }, code: 'not-found', message: 'nope' },
  { name: 'jobs/cancel: unknown run', send: { method: 'jobs/cancel', params: { runId: 'nope' } }, code: 'not-found', message: 'nope' },
  { name: 'kv/probes: unknown run', send: { method: 'kv/probes', params: { runId: 'nope' } }, code: 'not-found', message: 'nope' },
  { name: 'tensors/get: unknown tensor', send: { method: 'tensors/get', params: { tensorId: 'nope' } }, code: 'not-found', message: 'nope' },
  { name: 'rpc: unknown method', send: { method: 'datasets/drop', params: {} }, code: 'unknown-method', message: 'datasets/drop' },
  { name: 'rpc: params a string', send: { method: 'labels/list', params: 'all' }, code: 'invalid-message', message: 'labels/list' },
];

runBadInputCorpus('bad-input corpus: images, masks, labels, questions, manifests, models, specs', [...IMAGES, ...MASKS, ...LABELS, ...QUESTIONS, ...MANIFESTS, ...MODELS, ...SPECS]);
