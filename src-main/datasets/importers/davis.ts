/**
 * DAVIS-2017 (semi-supervised video object segmentation) from its published folder, as the
 * trainval / test-dev 480p zips unpack:
 *
 *   DAVIS/JPEGImages/480p/<seq>/00000.jpg …   frames
 *   DAVIS/Annotations/480p/<seq>/00000.png …  indexed PNGs: pixel = palette index = object id
 *   DAVIS/ImageSets/2017/{train,val,test-dev,test-challenge}.txt
 *
 * One item per sequence, every frame an image; each annotation PNG becomes a `mask` label on its
 * frame (every frame in train/val, the first frame only in test-dev). Frames and masks are paired
 * as davis2017-evaluation's `DAVIS` class reads them (sorted *.jpg, sorted *.png), here by file
 * stem so a stray file cannot shift the pairing; void (255) is set to 0 as its evaluation does.
 *
 * Options: `split` = an ImageSets/2017 list (default val), `subset` = sequence names, `limit` =
 * at most that many sequences.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { BenchmarkImportOptions } from '../../../src-shared/dataset/benchmarks.ts';
import type { Label } from '../../../src-shared/dataset/format.ts';
import { imageSize } from '../../experiments/inside-the-llm/images.ts';
import { type DatasetMeta, type DatasetWriter, resolveInside, tick } from './dataset-writer.ts';
import { readIdPng } from './palette-png.ts';

const SPLITS = ['train', 'val', 'test-dev', 'test-challenge'];
const RESOLUTION = '480p';
/** DAVIS marks pixels to ignore with 255; davis2017-evaluation zeroes them before scoring. */
const VOID = 255;


/** The folder holding JPEGImages/: the one the user named, or its DAVIS/ child (the zips unpack into DAVIS/). */
function davisRoot(source: string): string {
  for (const root of [join(source, 'DAVIS'), source]) {
    if (!existsSync(join(root, 'JPEGImages'))) continue;
    if (!existsSync(join(root, 'JPEGImages', RESOLUTION))) {
      throw new LoupeError('bad-input', `${join(root, 'JPEGImages')} has no ${RESOLUTION}/ folder (it has ${readdirSync(join(root, 'JPEGImages')).join(', ') || 'nothing'}); the importer reads the ${RESOLUTION} release, the one DAVIS-2017 results are reported on`);
    }
    return root;
  }
  throw new LoupeError('bad-input', `${source} is not a DAVIS-2017 folder: neither it nor ${join(source, 'DAVIS')} has JPEGImages/ (expected JPEGImages/480p/, Annotations/480p/, ImageSets/2017/)`);
}

/** Sorted file stems with extension `ext` in `dir`, named by `rel` in errors. */
function stems(root: string, rel: string, ext: string, what: string): string[] {
  const dir = resolveInside(root, rel, what);
  if (!statSync(dir).isDirectory()) throw new LoupeError('bad-input', `${what} ${rel} in ${root} is not a folder`);
  return readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith(ext))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

function sequenceList(root: string, split: string): string[] {
  const rel = `ImageSets/2017/${split}.txt`;
  const path = resolveInside(root, rel, `DAVIS-2017 split list (split '${split}')`);
  const names = readFileSync(path, 'utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) if (!/^[A-Za-z0-9._-]+$/.test(n) || n.startsWith('.')) throw new LoupeError('bad-input', `${rel} in ${root} names sequence '${n}', which is not a folder name`);
  return names;
}

export async function importDavis(source: string, out: DatasetWriter, options: BenchmarkImportOptions): Promise<DatasetMeta & { warnings: string[] }> {
  const root = davisRoot(source);
  const split = options.split ?? 'val';
  if (!SPLITS.includes(split)) throw new LoupeError('bad-input', `DAVIS-2017 has no split '${split}' (ImageSets/2017 lists ${SPLITS.join(', ')})`);
  let sequences = sequenceList(root, split);
  if (options.subset?.length) {
    const unknown = options.subset.filter((s) => !sequences.includes(s));
    if (unknown.length) throw new LoupeError('bad-input', `DAVIS-2017 ${split} has no sequence ${unknown.join(', ')} (ImageSets/2017/${split}.txt)`);
    sequences = sequences.filter((s) => options.subset!.includes(s));
  }
  if (options.limit > 0) sequences = sequences.slice(0, options.limit);

  // Listing every selected sequence first gives progress a frame total and fails on a missing
  // folder before anything is copied.
  const listed = sequences.map((seq) => {
    const frames = stems(root, `JPEGImages/${RESOLUTION}/${seq}`, '.jpg', `frames of sequence ${seq}:`);
    if (frames.length === 0) throw new LoupeError('bad-input', `sequence ${seq} has no frames in JPEGImages/${RESOLUTION}/${seq} of ${root}`);
    const masks = stems(root, `Annotations/${RESOLUTION}/${seq}`, '.png', `annotations of sequence ${seq}:`);
    if (masks.length === 0) throw new LoupeError('bad-input', `sequence ${seq} has no annotation PNGs in Annotations/${RESOLUTION}/${seq} of ${root}`);
    const orphan = masks.find((m) => !frames.includes(m));
    if (orphan !== undefined) throw new LoupeError('bad-input', `annotation Annotations/${RESOLUTION}/${seq}/${orphan}.png in ${root} has no frame JPEGImages/${RESOLUTION}/${seq}/${orphan}.jpg`);
    return { seq, frames, masks: new Set(masks) };
  });
  const totalFrames = listed.reduce((n, s) => n + s.frames.length, 0);
  const warnings: string[] = [];
  let done = 0;
  let voidPixels = 0;
  out.progress('frames', 0, totalFrames, true);

  for (const { seq, frames, masks } of listed) {
    const images: string[] = [];
    const labels: Label[] = [];
    const annotatedFrames: string[] = [];
    const objectIds = new Set<number>();
    let firstFrameIds: number[] | null = null;
    for (const [index, stem] of frames.entries()) {
      const frameRel = `JPEGImages/${RESOLUTION}/${seq}/${stem}.jpg`;
      const framePath = resolveInside(root, frameRel, 'frame');
      images.push(out.copyImage(framePath, `${seq}-${stem}`));
      if (masks.has(stem)) {
        const maskRel = `Annotations/${RESOLUTION}/${seq}/${stem}.png`;
        const map = readIdPng(readFileSync(resolveInside(root, maskRel, 'annotation')), `annotation ${maskRel} in ${root}`);
        const frame = imageSize(framePath);
        if (map.width !== frame.width || map.height !== frame.height) {
          throw new LoupeError('bad-input', `annotation ${maskRel} is ${map.width}×${map.height} but its frame ${frameRel} is ${frame.width}×${frame.height} (in ${root})`);
        }
        const present = new Set<number>();
        for (let i = 0; i < map.values.length; i++) {
          const v = map.values[i]!;
          if (v === VOID) {
            map.values[i] = 0;
            voidPixels++;
          } else if (v !== 0) present.add(v);
        }
        const ids = [...present].sort((a, b) => a - b);
        for (const id of ids) objectIds.add(id);
        firstFrameIds ??= ids;
        annotatedFrames.push(stem);
        labels.push({ kind: 'mask', image: index, file: out.writeMask(map.values, map.width, map.height, `${seq}-${stem}`), ids });
      }
      done++;
      out.progress('frames', done, totalFrames);
      if (done % 16 === 0) await tick();
    }
    out.addItem({
      id: seq,
      images,
      labels,
      meta: {
        sequence: seq,
        split,
        resolution: RESOLUTION,
        frameCount: frames.length,
        frames,
        annotatedFrames,
        objectIds: [...objectIds].sort((a, b) => a - b),
        firstFrameObjectIds: firstFrameIds ?? [],
      },
    });
  }
  out.progress('frames', done, totalFrames, true);
  if (voidPixels) warnings.push(`${voidPixels} void pixels (value ${VOID}) set to background, as davis2017-evaluation does`);
  return {
    name: `DAVIS-2017 ${split}`,
    description: `DAVIS-2017 ${split} (${RESOLUTION}): ${listed.length} sequences, ${totalFrames} frames; mask labels are the annotation PNGs' palette indices (object ids)`,
    task: 'video-object-segmentation',
    source: { benchmark: 'DAVIS-2017', split, resolution: RESOLUTION, sequences: listed.length, frames: totalFrames },
    warnings,
  };
}
