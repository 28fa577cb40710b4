/**
 * ImageNet-S (Gao et al., "Large-scale Unsupervised Semantic Segmentation", TPAMI 2022; LUSSeg) as
 * the toolbox prepares it (LUSSeg/ImageNet-S README "Structure", datapreparation_val.py,
 * datapreparation_anno.sh; mmsegmentation configs/_base_/datasets/imagenets.py):
 *
 *   ImageNetS50|ImageNetS300|ImageNetS919/
 *     validation/<wnid>/<name>.JPEG                 images (copied from ImageNet val)
 *     validation-segmentation/<wnid>/<name>.png     RGB PNGs: class id = R + G·256
 *     train-semi/<wnid>/…, train-semi-segmentation/<wnid>/…   the same for the annotated train images
 *
 * Class ids (README Q&A; data/data.py and mmseg LoadImageNetSAnnotations read them the same way):
 * 0 = "other category" (background: none of the 50/300/919), 1000 = ignored, k = the k-th wnid of
 * the sorted category list (imagenet-s-categories.ts). The official evaluator drops ignored pixels
 * from both truth and prediction; every label lists 1000 in `ignoreIds`, so Loupe's IoU does too.
 *
 * One item per image (id = file stem, ImageNet's `ILSVRC2012_val_…`): the image, its mask stored
 * with the class ids as they are (0, 1…N, 1000; 16-bit when 1000 is present), and one `mask` label
 * per class present (`ids: [class id]`, named by the class), the folder's class first. The prompt
 * names the folder's class ("Where is the <name> in this image?") so the class-name segmentation
 * probe (kv/probes `text-segmentation`, the paper's ImageNet-S protocol) can find it; replace it with
 * `datasets/set-question`. meta: wnid, class id and name of the folder, every class id present, the
 * pixel counts of background (0) and ignored (1000).
 *
 * Options: `split` = validation (default) or train-semi; `subset` = the variant (50, 300, 919 or
 * ImageNetS50 …) when the folder name does not tell, and/or wnids or class names to keep; `limit` =
 * at most that many images. Refused, naming the file: a missing folder, an image without a mask or
 * a mask without an image, a mask that is not an 8-bit RGB(A) PNG, differs in size from its image or
 * holds a class id outside the variant's list (other than 0 and 1000), a class folder that is not
 * one of the variant's wnids, a path or link leading out of the folder.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { PNG } from 'pngjs';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { Label } from '../../../src-shared/dataset/format.ts';
import { readCheckedImage } from '../../engine/image-decode.ts';
import { imageSize } from '../../experiments/inside-the-llm/images.ts';
import { resolveInside, tick } from './dataset-writer.ts';
import { IMAGENET_S_VARIANTS, type ImageNetSCategory, type ImageNetSVariant, imagenetSCategories } from './imagenet-s-categories.ts';
import type { BenchmarkImporter } from './registry.ts';

const SPLITS = ['validation', 'train-semi'];
/** "The `ignored part` is annotated as 1000, and the `other category` is annotated as 0" (README Q&A). */
export const IMAGENET_S_IGNORE = 1000;
const IMAGE_EXTENSIONS = new Set(['.jpeg', '.jpg', '.png']);

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();
const variantOf = (s: string): ImageNetSVariant | null => {
  const m = /^(?:ImageNetS)?(50|300|919)$/i.exec(s.trim());
  return m ? (Number(m[1]) as ImageNetSVariant) : null;
};

/** The ImageNetS<N> folder to read and its variant: from the folder's name, its ImageNetS<N>/ children, the subset, or its class-folder count. */
function locate(source: string, split: string, asked: ImageNetSVariant | null): { root: string; variant: ImageNetSVariant } {
  if (!isDir(source)) throw new LoupeError('bad-input', `${source} is not a folder (expected an ImageNetS50, ImageNetS300 or ImageNetS919 folder with ${split}/ and ${split}-segmentation/)`);
  const named = variantOf(basename(source));
  if (named !== null) {
    if (asked !== null && asked !== named) throw new LoupeError('bad-input', `${source} is ImageNet-S${named} by its name, but the subset asks for ImageNet-S${asked}`);
    return { root: source, variant: named };
  }
  const children = IMAGENET_S_VARIANTS.filter((v) => isDir(join(source, `ImageNetS${v}`)));
  if (children.length) {
    const variant = asked ?? (children.length === 1 ? children[0]! : null);
    if (variant === null) throw new LoupeError('bad-input', `${source} holds ${children.map((v) => `ImageNetS${v}`).join(', ')}; name one in the subset (e.g. ${children[0]}) or point at it`);
    if (!children.includes(variant)) throw new LoupeError('bad-input', `${source} has no ImageNetS${variant}/ folder (it has ${children.map((v) => `ImageNetS${v}`).join(', ')})`);
    return { root: join(source, `ImageNetS${variant}`), variant };
  }
  if (!isDir(join(source, split))) throw new LoupeError('bad-input', `${source} is not an ImageNet-S folder: it has no ImageNetS50/ImageNetS300/ImageNetS919 folder and no ${split}/ folder`);
  if (asked !== null) return { root: source, variant: asked };
  const count = readdirSync(join(source, split)).filter((f) => !f.startsWith('.')).length;
  const variant = IMAGENET_S_VARIANTS.find((v) => v === count);
  if (variant === undefined) throw new LoupeError('bad-input', `cannot tell which ImageNet-S ${source} is: its name is not ImageNetS50/300/919 and ${split}/ has ${count} class folders; name the variant in the subset (50, 300 or 919)`);
  return { root: source, variant };
}

/** Sorted non-hidden entries of `rel` in `root` (a folder inside it). */
function entries(root: string, rel: string, what: string): string[] {
  const dir = resolveInside(root, rel, what);
  if (!statSync(dir).isDirectory()) throw new LoupeError('bad-input', `${what} ${rel} in ${root} is not a folder`);
  return readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .sort();
}

/** Stem → file name of the files in `<rel>/`, refusing a file whose extension is not in `allowed`. */
function filesByStem(root: string, rel: string, allowed: Set<string>, kind: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of entries(root, rel, `${kind} folder`)) {
    const ext = extname(f).toLowerCase();
    if (!allowed.has(ext)) throw new LoupeError('bad-input', `${rel}/${f} in ${root} is not a ${kind === 'mask' ? 'PNG mask (.png)' : 'JPEG or PNG image'}`);
    const stem = f.slice(0, -ext.length);
    if (out.has(stem)) throw new LoupeError('bad-input', `${rel} in ${root} has two ${kind}s named ${stem} (${out.get(stem)}, ${f})`);
    out.set(stem, f);
  }
  return out;
}

/** The class id of every pixel (R + G·256) of an ImageNet-S mask PNG. */
function readClassMask(path: string, what: string): { width: number; height: number; ids: Uint16Array } {
  const { bytes, header } = readCheckedImage(path, what, 'maskPixels');
  if (header.format !== 'png') throw new LoupeError('bad-input', `${what} is a ${header.format.toUpperCase()}, not a PNG`);
  if ((header.colorType !== 2 && header.colorType !== 6) || header.bitDepth !== 8) {
    const kind = { 0: 'greyscale', 3: 'indexed (palette)', 4: 'grey + alpha', 2: '16-bit RGB', 6: '16-bit RGBA' }[header.colorType ?? -1] ?? `colour type ${header.colorType}`;
    throw new LoupeError('bad-input', `${what} is a ${kind} PNG; an ImageNet-S mask is an 8-bit RGB PNG whose class id is R + G·256`);
  }
  let png: PNG;
  try {
    png = PNG.sync.read(bytes);
  } catch (e) {
    throw new LoupeError('bad-input', `${what} is not a readable PNG: ${(e as Error).message}`);
  }
  const n = png.width * png.height;
  const ids = new Uint16Array(n);
  for (let i = 0; i < n; i++) ids[i] = png.data[i * 4]! + png.data[i * 4 + 1]! * 256;
  return { width: png.width, height: png.height, ids };
}

export const importImagenetS: BenchmarkImporter = async (source, out, options) => {
  const split = options.split ?? 'validation';
  if (!SPLITS.includes(split)) throw new LoupeError('bad-input', `ImageNet-S has no annotated split '${split}' (${SPLITS.join(', ')}; test masks are kept on the evaluation server)`);
  const asked = [...new Set((options.subset ?? []).map(variantOf).filter((v) => v !== null))];
  if (asked.length > 1) throw new LoupeError('bad-input', `the subset names ImageNet-S${asked.join(' and ImageNet-S')}; one import reads one variant`);
  const { root, variant } = locate(source, split, asked[0] ?? null);
  const categories = imagenetSCategories(variant);
  const byWnid = new Map(categories.map((c) => [c.wnid, c]));
  const maskDir = `${split}-segmentation`;

  // Keep: wnids or class names in the subset (besides the variant).
  const wanted = (options.subset ?? []).filter((s) => variantOf(s) === null);
  let keep: Set<string> | null = null;
  if (wanted.length) {
    keep = new Set();
    for (const w of wanted) {
      const hits = categories.filter((c) => c.wnid === w || c.name.toLowerCase() === w.trim().toLowerCase());
      if (!hits.length) throw new LoupeError('bad-input', `ImageNet-S${variant} has no category ${w} (a wnid such as ${categories[0]!.wnid} or a class name such as ${categories[0]!.name})`);
      for (const c of hits) keep.add(c.wnid);
    }
  }

  // Pair every image with its mask before anything is copied: progress gets a total and a broken
  // folder fails at once.
  const classDirs = entries(root, split, 'image folder');
  const maskDirs = new Set(entries(root, maskDir, 'mask folder'));
  for (const d of [...classDirs, ...maskDirs]) if (!byWnid.has(d)) throw new LoupeError('bad-input', `${classDirs.includes(d) ? split : maskDir}/${d} in ${root} is not an ImageNet-S${variant} category (a wnid of ImageNetS_categories_im${variant}.txt)`);
  const pairs: { cat: ImageNetSCategory; stem: string; image: string; mask: string }[] = [];
  for (const wnid of [...new Set([...classDirs, ...maskDirs])].sort()) {
    if (keep && !keep.has(wnid)) continue;
    const images = classDirs.includes(wnid) ? filesByStem(root, `${split}/${wnid}`, IMAGE_EXTENSIONS, 'image') : new Map<string, string>();
    const masks = maskDirs.has(wnid) ? filesByStem(root, `${maskDir}/${wnid}`, new Set(['.png']), 'mask') : new Map<string, string>();
    for (const [stem, f] of masks) if (!images.has(stem)) throw new LoupeError('bad-input', `mask ${maskDir}/${wnid}/${f} in ${root} has no image ${split}/${wnid}/${stem}.JPEG`);
    for (const [stem, f] of images) {
      if (!masks.has(stem)) throw new LoupeError('bad-input', `image ${split}/${wnid}/${f} in ${root} has no mask ${maskDir}/${wnid}/${stem}.png`);
      pairs.push({ cat: byWnid.get(wnid)!, stem, image: `${split}/${wnid}/${f}`, mask: `${maskDir}/${wnid}/${masks.get(stem)!}` });
    }
  }
  const selected = options.limit > 0 ? pairs.slice(0, options.limit) : pairs;
  const warnings: string[] = [];
  const absent: string[] = [];
  let ignored = 0;
  const seen = new Set<number>();
  out.progress('images', 0, selected.length, true);

  for (const [done, { cat, stem, image, mask }] of selected.entries()) {
    const imagePath = resolveInside(root, image, 'image');
    const map = readClassMask(resolveInside(root, mask, 'mask'), `mask ${mask} in ${root}`);
    const size = imageSize(imagePath);
    if (map.width !== size.width || map.height !== size.height) throw new LoupeError('bad-input', `mask ${mask} is ${map.width}×${map.height} but its image ${image} is ${size.width}×${size.height} (in ${root})`);
    const present = new Set<number>();
    let background = 0;
    let ignore = 0;
    for (let i = 0; i < map.ids.length; i++) {
      const v = map.ids[i]!;
      if (v === 0) background++;
      else if (v === IMAGENET_S_IGNORE) ignore++;
      else if (v > categories.length) {
        const x = i % map.width;
        const y = (i - x) / map.width;
        throw new LoupeError('bad-input', `mask ${mask} in ${root} has class id ${v} at (${x}, ${y}) (R ${v % 256}, G ${v >> 8}); ImageNet-S${variant} ids are 1…${categories.length}, 0 (other) and ${IMAGENET_S_IGNORE} (ignored)`);
      } else present.add(v);
    }
    ignored += ignore;
    for (const id of present) seen.add(id);
    const ids = [...present].sort((a, b) => a - b);
    if (!present.has(cat.id)) absent.push(stem);
    const file = out.writeMask(map.ids, map.width, map.height, stem);
    const order = present.has(cat.id) ? [cat.id, ...ids.filter((id) => id !== cat.id)] : ids;
    const labels: Label[] = order.map((id) => ({ kind: 'mask', image: 0, file, ids: [id], ignoreIds: [IMAGENET_S_IGNORE], name: categories[id - 1]!.name }));
    out.addItem({
      id: stem,
      images: [out.copyImage(imagePath, stem)],
      prompt: `Where is the ${cat.name} in this image?`,
      labels,
      meta: { wnid: cat.wnid, classId: cat.id, className: cat.name, classIds: ids, backgroundPixels: background, ignoredPixels: ignore, image, mask },
    });
    out.progress('images', done + 1, selected.length);
    if (done % 16 === 15) await tick();
  }
  out.progress('images', selected.length, selected.length, true);
  if (ignored) warnings.push(`${ignored} ignored pixels (class ${IMAGENET_S_IGNORE}) kept as id ${IMAGENET_S_IGNORE} in the masks and listed as ignoreIds on every label: left out of the scores, as the official evaluator does`);
  if (absent.length) warnings.push(`${absent.length} image${absent.length === 1 ? '' : 's'} without a pixel of their folder's class: ${absent.slice(0, 10).join(', ')}${absent.length > 10 ? ' …' : ''}`);
  const names = new Map<string, number>();
  for (const c of categories) if (seen.has(c.id)) names.set(c.name, (names.get(c.name) ?? 0) + 1);
  const shared = [...names].filter(([, k]) => k > 1).map(([n]) => n);
  if (shared.length) warnings.push(`two categories present are both named ${shared.map((n) => `"${n}"`).join(' and ')} (the toolbox's names); their mask labels share the name, so a per-name score merges them (their ids differ)`);
  return {
    name: `ImageNet-S${variant} ${split}${keep ? ` (${wanted.join(', ')})` : ''}`,
    description: `ImageNet-S${variant} ${split} (LUSSeg): ${selected.length} images; masks hold the class ids (R + G·256 of the published PNGs: 0 other, 1…${categories.length} the categories, ${IMAGENET_S_IGNORE} ignored), one mask label per class present`,
    task: 'semantic-segmentation',
    source: { benchmark: 'ImageNet-S', variant, split, images: selected.length, backgroundId: 0, ignoreId: IMAGENET_S_IGNORE, categories },
    warnings,
  };
};
