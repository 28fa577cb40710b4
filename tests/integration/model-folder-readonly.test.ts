/**
 * Model folders are read-only to Loupe: a vlm-forward with layer taps and attention (rewritten
 * graphs) on an imported copy of a model leaves the folder byte-for-byte as it was — the
 * rewrites live in the data folder's graph cache — and re-importing the folder gives the same
 * model id, also when tapped copies left there by older versions are present.
 */
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunInfo } from '../../src-shared/contract/domain.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { twinOnnxDir } from '../../src-main/engine/vlm/overlay.ts';
import { RESOURCES_DIR } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { DATASET_ID, tempDir } from '../helpers/fixtures.ts';

/** Every file under `dir` → sha256 of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(() => engine?.close());

describe('model folders are never written', () => {
  it('tapped graphs go to the graph cache; the folder and the model id stay the same', async () => {
    const dir = join(tempDir(), 'my-llava');
    cpSync(join(RESOURCES_DIR, 'models', 'micro-llava'), dir, { recursive: true });
    const before = snapshot(dir);
    const mtimes = Object.keys(before).map((f) => statSync(join(dir, f)).mtimeMs);
    const model = engine.importModel(dir);
    expect(model.bundled).toBe(false);

    const started = await callEngine<RunInfo>(engine, 'jobs/start', {
      kind: 'vlm-forward',
      modelId: model.id,
      datasetId: DATASET_ID,
      spec: { limit: 2, taps: { visionLayers: true, llmLayers: true, attention: true } },
    });
    await engine.queue.drained();
    const run = engine.store.runs.get(started.id);
    expect(run).toMatchObject({ status: 'done', done: 2, failed: 0 });
    const names = engine.store.runs.results(run.id)[0]!.tensors.map((t) => t.name);
    expect(names).toContain('vision.hidden_states.1');
    expect(names).toContain('text.attentions.0');

    // The folder: same files, same bytes, untouched.
    expect(snapshot(dir)).toEqual(before);
    expect(Object.keys(before).map((f) => statSync(join(dir, f)).mtimeMs)).toEqual(mtimes);
    // The rewrites: in the data folder's twin, keyed by the model's hash.
    const twin = twinOnnxDir(join(engine.options.dataDir, 'graph-cache'), model.hash);
    const rewritten = readdirSync(twin).filter((n) => n.includes('.loupe-taps-'));
    expect(rewritten.some((n) => n.startsWith('vision_encoder.'))).toBe(true);
    expect(rewritten.some((n) => n.startsWith('decoder_model_merged.'))).toBe(true);

    // Re-import: the same id and hash.
    const again = engine.importModel(dir);
    expect(again.id).toBe(model.id);
    expect(again.hash).toBe(model.hash);

    // Tapped copies an older Loupe wrote beside the originals do not count either.
    writeFileSync(join(dir, 'onnx', 'decoder_model_merged.loupe-taps-0123456789abcdef.onnx'), 'stale rewrite');
    expect(engine.importModel(dir).id).toBe(model.id);
  });
});
