/** The PyTorch reference fixtures written by tools/micro-vlm at export time, and comparison helpers. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';

export const FIXTURE_DIR = join(REPO_ROOT, 'tests', 'fixtures', 'micro-llava');

export interface FixtureCase {
  name: string;
  file: string;
  source: string;
  question: string;
  prompt: string;
  num_images: number;
  image_token_runs: [number, number][];
  greedy_tokens: number[];
  greedy_text: string;
}

export interface FixtureIndex {
  max_new_tokens: number;
  vision_layers: number;
  text_layers: number;
  image_token_index: number;
  eos_token_id: number;
  cases: FixtureCase[];
}

export function fixtureIndex(): FixtureIndex {
  return JSON.parse(readFileSync(join(FIXTURE_DIR, 'cases.json'), 'utf8')) as FixtureIndex;
}

export function fixtureTensors(c: FixtureCase): Record<string, HostTensor> {
  const bytes = readFileSync(join(FIXTURE_DIR, c.file));
  return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
}

/**
 * max |a − b| / max |b|: the relative error used for every numeric parity claim. An all-zero
 * reference admits only an exact match (0), never a division that hides a difference.
 */
export function relativeError(actual: HostTensor | ArrayLike<number>, expected: HostTensor | ArrayLike<number>): number {
  const values = (x: HostTensor | ArrayLike<number>): ArrayLike<number> => ('dtype' in x ? toFloat32(x) : x);
  const a = values(actual);
  const b = values(expected);
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale > 0 ? diff / scale : diff === 0 ? 0 : Infinity;
}

/**
 * Max |Δlogit| between two forward passes over the same prompt, split into text positions and
 * image-token positions (full logits [1, seq, vocab]): what text → image blocking must leave at 0.
 */
export function logitDiffByPosition(a: { fullLogits?: HostTensor; inputIds: number[]; imageTokens: { position: number }[] }, b: { fullLogits?: HostTensor }): { text: number; image: number } {
  const vocab = a.fullLogits!.shape[2]!;
  const imagePositions = new Set(a.imageTokens.map((t) => t.position));
  const x = toFloat32(a.fullLogits!);
  const y = toFloat32(b.fullLogits!);
  let text = 0;
  let image = 0;
  for (let p = 0; p < a.inputIds.length; p++) {
    for (let v = 0; v < vocab; v++) {
      const d = Math.abs(x[p * vocab + v]! - y[p * vocab + v]!);
      if (imagePositions.has(p)) image = Math.max(image, d);
      else text = Math.max(text, d);
    }
  }
  return { text, image };
}
