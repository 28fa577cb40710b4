/**
 * Taps in an Optimum-style merged decoder (tests/unit/graph/builders.ts buildMergedModel: the
 * decoder in both branches of an If on use_cache_branch), run in ORT: whichever branch runs,
 * each tap holds the value the unmerged graph computes for the same site, and the model's own
 * output is unchanged.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildCatalogue } from '../../src-main/engine/graph/catalogue.ts';
import { encodeModel } from '../../src-main/engine/graph/model-proto.ts';
import { addTaps } from '../../src-main/engine/graph/taps.ts';
import { buildMergedModel, buildTransformer } from '../unit/graph/builders.ts';

const opts: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: 1 };
const S = 5;

async function session(model: Parameters<typeof encodeModel>[0], name: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'loupe-merged-')), name);
  writeFileSync(path, encodeModel(model));
  return ort.InferenceSession.create(path, opts);
}

describe('merged decoder taps in ORT', () => {
  it('every hidden state and attention tap equals the unmerged graph\'s, in both branches', async () => {
    const cat = buildCatalogue(buildMergedModel(2));
    const plainCat = buildCatalogue(buildTransformer({ layers: 2 }));
    const taps = [...Object.values(cat.hiddenStates), ...cat.layers.map((l) => l.attention!.tensor), cat.finalNorm!];
    const plainTaps = [...Object.values(plainCat.hiddenStates), ...plainCat.layers.map((l) => l.attention!.tensor), plainCat.finalNorm!];
    const merged = await session(addTaps(buildMergedModel(2), taps), 'merged.onnx');
    const plain = await session(addTaps(buildTransformer({ layers: 2 }), plainTaps), 'plain.onnx');
    const feeds = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt((i * 3) % 16)), [1, S]),
      attention_bias: new ort.Tensor('float32', new Float32Array(S * S), [S, S]),
    };
    const want = await plain.run(feeds);
    for (const branch of [0, 1]) {
      const got = await merged.run({ ...feeds, use_cache_branch: new ort.Tensor('bool', Uint8Array.of(branch), [1]) });
      expect(Array.from(got.logits!.data as Float32Array)).toEqual(Array.from(want.logits!.data as Float32Array));
      taps.forEach((t, i) => expect(Array.from(got[t]!.data as Float32Array), `${plainTaps[i]} (branch ${branch})`).toEqual(Array.from(want[plainTaps[i]!]!.data as Float32Array)));
    }
  });
});
