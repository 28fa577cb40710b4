/**
 * Where rewritten graphs (tapped / ablation copies) live: never in the model folder. Loupe
 * treats every model folder as read-only — writing there would change the folder's fingerprint
 * (util/hash.ts), so re-importing the unchanged folder would give a new model id and earlier
 * runs would no longer match it — and bundled or system-wide installs may not be writable at all.
 *
 * ORT resolves external data only beside the model file (no `..`, no symlinks out), so the
 * rewrites go into a twin of the model's `onnx/` folder under Loupe's data folder
 * (`<data>/graph-cache/<model hash>/onnx`), which holds hard links to the originals it needs —
 * the graph and its external data, no bytes copied. Cross-device data dirs fall back to copying.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Files older Loupe versions wrote beside the originals (`<stem>.loupe-taps-<hash>.onnx`, temp files): not part of the model. */
export function isLoupeArtifact(name: string): boolean {
  return name.includes('.loupe-taps-');
}

/** The twin folder of a model's `onnx/` under `cacheRoot`, keyed by the model's content hash. */
export function twinOnnxDir(cacheRoot: string, modelHash: string): string {
  return join(cacheRoot, modelHash.slice(0, 16), 'onnx');
}

/**
 * The graph `name` in `entries` and what it loads: `<name>_data`, `<name>_data_1`, `<name>.data` …
 * (the onnx-community layout), and any data file no graph's name claims (an export that names
 * its external data freely).
 */
export function companionsOf(name: string, entries: readonly string[]): string[] {
  const graphs = entries.filter((n) => n.endsWith('.onnx') && !isLoupeArtifact(n));
  return entries.filter((n) => !isLoupeArtifact(n) && (n.startsWith(name) || (!n.endsWith('.onnx') && !graphs.some((g) => n.startsWith(g)))));
}

/**
 * Returns where `file` (a session graph inside a model's onnx/ folder) can be rewritten beside:
 * its place in the twin, after linking the graph and its external data there.
 */
export function rewritableOnnxDir(options: { cacheRoot: string; modelHash: string }): (file: string) => string {
  const twin = twinOnnxDir(options.cacheRoot, options.modelHash);
  return (file) => {
    const onnxDir = dirname(file);
    const name = basename(file);
    mkdirSync(twin, { recursive: true });
    for (const entry of companionsOf(name, readdirSync(onnxDir))) {
      const src = join(onnxDir, entry);
      const dst = join(twin, entry);
      if (existsSync(dst) || !statSync(src).isFile()) continue;
      try {
        linkSync(src, dst);
      } catch {
        // Another device: copy, under a temp name so a killed copy is never taken for the file.
        const partial = `${dst}.partial-${process.pid}`;
        copyFileSync(src, partial);
        renameSync(partial, dst);
      }
    }
    return join(twin, name);
  };
}
