/**
 * Model and dataset folders are read through their symlinks only while the links stay inside the
 * folder: a folder is data, not a licence to read anywhere (a dataset "image" linked to
 * /etc/passwd or a model's onnx/ linked to another user's files must not be opened).
 */
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { LoupeError } from '../../src-shared/contract/errors.ts';

function under(real: string, root: string): boolean {
  return real === root || real.startsWith(root + sep);
}

/**
 * The real folders a folder's links may lead into: itself, and for a Hugging Face hub cache
 * snapshot (`<repo>/snapshots/<rev>`, whose files are links to `../../blobs/<sha>`) that repo's blobs.
 */
export function containmentRoots(folder: string): string[] {
  const real = realpathSync(folder);
  const roots = [real];
  if (basename(dirname(real)) === 'snapshots') roots.push(join(dirname(dirname(real)), 'blobs'));
  return roots;
}

/** Throws when `path` (inside `folder`) resolves, through links, to somewhere outside the allowed roots. */
export function assertInsideFolder(folder: string, path: string, what: string, roots: string[] = containmentRoots(folder)): void {
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return; // missing: the caller's existence check names it
  }
  if (!roots.some((r) => under(real, r))) {
    throw new LoupeError('bad-input', `${what} ${relative(folder, path) || path} is a link leading outside ${folder} (to ${real}); copy the file into the folder (cp -L) instead of linking to it`);
  }
}

/** Checks every symlink among the entries of `dir` (not recursive) with assertInsideFolder. */
export function assertLinksInside(folder: string, dir: string, what: string, roots: string[] = containmentRoots(folder)): void {
  if (!statSync(dir).isDirectory()) return; // not a folder: the caller's own checks say what is wrong
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (lstatSync(path).isSymbolicLink()) assertInsideFolder(folder, path, what, roots);
  }
}
