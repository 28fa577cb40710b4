/**
 * Model and dataset folders are not read through symlinks that lead out of them (issue 23): a
 * linked "image", mask or model file could be any readable file (here /etc/passwd). Links that
 * stay inside, and a Hugging Face cache snapshot's links into its repo's blobs/, still work.
 */
import { copyFileSync, cpSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readDatasetFolder } from '../../src-main/engine/dataset-folder.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { DATASET_DIR, tempDir } from '../helpers/fixtures.ts';

const MODEL_DIR = join(RESOURCES_DIR, 'models', 'micro-llava');
const IMAGE = 'images/colour-at-point-test-000000_0.png';
const MASK = 'masks/colour-at-point-test-000000_0.png';

/** A one-item dataset folder with a real image and mask copied from the bundled one. */
function datasetFolder(images: string[], mask = MASK): string {
  const root = tempDir('loupe-ds-');
  mkdirSync(join(root, 'images'));
  mkdirSync(join(root, 'masks'));
  copyFileSync(join(DATASET_DIR, IMAGE), join(root, IMAGE));
  copyFileSync(join(DATASET_DIR, MASK), join(root, MASK));
  const item = { id: 'a', images, labels: [{ kind: 'mask', image: 0, file: mask, ids: [1] }] };
  writeFileSync(join(root, 'dataset.json'), JSON.stringify({ format: 'loupe-dataset', version: 1, name: 'links', task: 'colour-at-point', items: [item] }));
  return root;
}

describe('dataset folders', () => {
  it('reads a folder whose links stay inside it', () => {
    const root = datasetFolder(['images/alias.png']);
    symlinkSync(join(root, IMAGE), join(root, 'images/alias.png'));
    expect(readDatasetFolder(root).manifest.items[0]!.images).toEqual(['images/alias.png']);
  });

  it('refuses an image linked to /etc/passwd, naming the item and the link', () => {
    const root = datasetFolder(['images/passwd.png']);
    symlinkSync('/etc/passwd', join(root, 'images/passwd.png'));
    expect(() => readDatasetFolder(root)).toThrow(/dataset item a: image images\/passwd\.png is a link leading outside .* \(to \/etc\/passwd\)/);
  });

  it('refuses images reached through a linked folder outside', () => {
    const outside = tempDir('loupe-outside-');
    copyFileSync(join(DATASET_DIR, IMAGE), join(outside, 'x.png'));
    const root = datasetFolder(['elsewhere/x.png']);
    symlinkSync(outside, join(root, 'elsewhere'));
    expect(() => readDatasetFolder(root)).toThrow(/image elsewhere\/x\.png is a link leading outside/);
  });

  it('refuses a mask file linked to /etc/passwd', () => {
    const root = datasetFolder([IMAGE], 'masks/passwd.png');
    symlinkSync('/etc/passwd', join(root, 'masks/passwd.png'));
    expect(() => readDatasetFolder(root)).toThrow(/dataset item a: mask file masks\/passwd\.png is a link leading outside/);
  });

  it('refuses a dataset.json linked from outside when the folder is given', () => {
    const root = datasetFolder([IMAGE]);
    const outside = tempDir('loupe-outside-');
    copyFileSync(join(root, 'dataset.json'), join(outside, 'dataset.json'));
    rmSync(join(root, 'dataset.json'));
    symlinkSync(join(outside, 'dataset.json'), join(root, 'dataset.json'));
    expect(() => readDatasetFolder(root)).toThrow(/dataset manifest dataset\.json is a link leading outside/);
  });
});

describe('model folders', () => {
  const copy = () => {
    const dir = join(tempDir('loupe-model-'), 'micro-llava');
    cpSync(MODEL_DIR, dir, { recursive: true });
    return dir;
  };

  it('refuses a top-level file linked to /etc/passwd', () => {
    const dir = copy();
    symlinkSync('/etc/passwd', join(dir, 'tokenizer_extra.json'));
    expect(() => openModelFolder(dir)).toThrow(/model file tokenizer_extra\.json is a link leading outside .* \(to \/etc\/passwd\)/);
  });

  it('refuses a link in onnx/ (an external-data file) leading outside', () => {
    const dir = copy();
    symlinkSync('/etc/passwd', join(dir, 'onnx', 'decoder_model_merged.onnx_data'));
    expect(() => openModelFolder(dir)).toThrow(/model file onnx\/decoder_model_merged\.onnx_data is a link leading outside/);
  });

  it('refuses an onnx/ folder that is a link to elsewhere', () => {
    const dir = copy();
    const outside = tempDir('loupe-outside-');
    cpSync(join(dir, 'onnx'), join(outside, 'onnx'), { recursive: true });
    rmSync(join(dir, 'onnx'), { recursive: true });
    symlinkSync(join(outside, 'onnx'), join(dir, 'onnx'));
    expect(() => openModelFolder(dir)).toThrow(/model file onnx is a link leading outside/);
  });

  it("opens a Hugging Face cache snapshot, whose files link into the repo's blobs/", () => {
    // <repo>/snapshots/<rev>/<file> → ../../blobs/<name>, as huggingface_hub lays out its cache.
    const repo = join(tempDir('loupe-hf-'), 'models--loupe--micro-llava');
    const snap = join(repo, 'snapshots', 'abc123');
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(join(snap, 'onnx'), { recursive: true });
    for (const sub of ['', 'onnx']) {
      for (const e of readdirSync(join(MODEL_DIR, sub), { withFileTypes: true })) {
        if (e.isDirectory()) continue;
        const blob = join(repo, 'blobs', `${sub}-${e.name}`);
        copyFileSync(join(MODEL_DIR, sub, e.name), blob);
        symlinkSync(blob, join(snap, sub, e.name));
      }
    }
    const folder = openModelFolder(snap);
    expect(folder.family).toBe('llava');
    symlinkSync('/etc/passwd', join(snap, 'passwd'));
    expect(() => openModelFolder(snap)).toThrow(/model file passwd is a link leading outside/);
  });
});
