/**
 * A writable twin of a model's `onnx/` folder for rewritten graphs. Bundled models (and any
 * read-only install) must not be written into, and ORT resolves external data only beside
 * the model file (no `..`, no symlinks out), so the twin holds hard links to every original
 * file — graphs and `.onnx_data` alike, no bytes copied — and the rewrites go next to them.
 * Cross-device data dirs fall back to copying.
 */
import { constants, accessSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ModelFolder } from '../model-folder.ts';

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Returns where `file` (a path inside the model's onnx/ folder) can be rewritten beside. */
export function rewritableOnnxDir(folder: ModelFolder, options: { cacheRoot: string; modelHash: string; bundled: boolean }): (file: string) => string {
  const onnxDir = dirname(folder.files.vision_encoder);
  if (!options.bundled && writable(onnxDir)) return (file) => file;
  const twin = join(options.cacheRoot, options.modelHash.slice(0, 16), 'onnx');
  mkdirSync(twin, { recursive: true });
  for (const name of readdirSync(onnxDir)) {
    const src = join(onnxDir, name);
    const dst = join(twin, name);
    if (name.includes('.loupe-taps-') || !statSync(src).isFile() || existsSync(dst)) continue;
    try {
      linkSync(src, dst);
    } catch {
      copyFileSync(src, dst);
    }
  }
  return (file) => join(twin, basename(file));
}
