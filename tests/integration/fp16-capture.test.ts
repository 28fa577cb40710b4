/**
 * Captures stored as fp16 are converted by the runtime: the run's graphs output
 * `loupe_fp16:<tensor>` through an ONNX Cast (engine/graph/taps.ts fp16TapName), and the worker
 * only gathers rows and writes. Checked here against what we did not write — ORT's own Cast
 * (MLAS) on a sweep of float32 bit patterns — and end to end: an fp16 run's stored bits equal our
 * converter (half.ts, itself equal to PyTorch) applied to a float32 run's stored values.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { AttributeProto_AttributeType, ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src-main/engine/engine.ts';
import { readModel } from '../../src-main/engine/graph/model-proto.ts';
import { type HostTensor, toFloat32 } from '../../src-shared/tensor/dtype.ts';
import { f32ToF16 } from '../../src-shared/tensor/half.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';

function castModel(): Uint8Array {
  const io = (name: string, elemType: TensorProto_DataType) => ({
    name,
    type: { value: { case: 'tensorType' as const, value: { elemType, shape: { dim: [{ value: { case: 'dimParam' as const, value: 'n' } }] } } } },
  });
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    opsetImport: [{ domain: '', version: 17n }],
    graph: {
      name: 'cast',
      node: [{ opType: 'Cast', name: 'cast', input: ['x'], output: ['y'], attribute: [{ name: 'to', type: AttributeProto_AttributeType.INT, i: BigInt(TensorProto_DataType.FLOAT16) }] }],
      input: [io('x', TensorProto_DataType.FLOAT)],
      output: [io('y', TensorProto_DataType.FLOAT16)],
    },
  });
  return toBinary(ModelProtoSchema, model);
}

describe("the runtime's fp16 conversion", () => {
  it('ORT Cast float32 → float16 equals f32ToF16 on 16.8 M patterns spanning every exponent and low byte; NaN stays NaN', async () => {
    const session = await ort.InferenceSession.create(castModel());
    // Every 256th bit pattern, shifted through all 256 low bytes: all exponents, signs, subnormals,
    // overflow and round-to-even ties (the low 13 bits decide rounding) are represented.
    const n = 1 << 24;
    const bits = new Uint32Array(n);
    for (let i = 0; i < n; i++) bits[i] = (i * 256 + (i & 255)) >>> 0;
    const edges = [0, 0x80000000, 0x7f800000, 0xff800000, 0x477fefff, 0x477ff000, 0x33000000, 0x33000001, 0x387fe000, 0x38800000, 0x3f801000, 0x3f803000, 0x7fc00000, 0x7f800001];
    bits.set(edges);
    const x = new Float32Array(bits.buffer);
    const out = await session.run({ x: new ort.Tensor('float32', x, [n]) });
    const got = out.y!.data as Uint16Array;
    const want = f32ToF16(x);
    let differ = 0;
    let nans = 0;
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(x[i]!)) {
        nans++;
        // A NaN's payload is the hardware's to keep; it must stay a NaN of the same sign.
        expect((got[i]! & 0x7c00) === 0x7c00 && (got[i]! & 0x3ff) !== 0 && (got[i]! & 0x8000) === (want[i]! & 0x8000)).toBe(true);
      } else if (got[i] !== want[i]) differ++;
    }
    expect(nans).toBeGreaterThan(0);
    expect(differ).toBe(0);
  });
});

describe('vlm-forward stores the runtime-converted fp16 captures', () => {
  let engine: Engine;
  let dataDir: string;
  beforeAll(async () => {
    engine = await startTestEngine();
    dataDir = dirname(engine.store.blobs.root);
  });
  afterAll(() => engine?.close());

  const taps = { projector: true, imageKV: true, visionLayers: true, llmLayers: true, attention: true };

  async function stored(spec: object): Promise<Map<string, HostTensor>> {
    const run = await callEngine<{ id: string }>(engine, 'jobs/start', { kind: 'vlm-forward', modelId: 'micro-llava', datasetId: 'colour-at-point', spec: { limit: 2, ...spec } });
    await engine.queue.drained();
    expect(engine.store.runs.get(run.id).status).toBe('done');
    const out = new Map<string, HostTensor>();
    for (const r of engine.store.runs.results(run.id)) for (const t of r.tensors) out.set(`${r.itemId}/${t.name}`, engine.store.blobs.getTensors(t.blob)[t.name]!);
    return out;
  }

  /** Graph outputs named loupe_fp16:… in the cached rewritten graphs. */
  async function fp16Outputs(): Promise<string[]> {
    const dir = join(dataDir, 'graph-cache');
    const files = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.onnx'));
    const names: string[] = [];
    for (const f of files) for (const o of (await readModel(join(dir, f))).graph!.output) if (o.name.startsWith('loupe_fp16:')) names.push(o.name);
    return names;
  }

  it('equal bit for bit to f32ToF16 of a float32 run; the greedy-decoding run (worker conversion) equal too', async () => {
    const fp32 = await stored({ storeDtype: 'float32', taps });
    expect(await fp16Outputs()).toEqual([]);
    const fp16 = await stored({ storeDtype: 'float16', taps });
    const cast = await fp16Outputs();
    // K/V of every layer, the projector output and the vision/LLM taps all left the runtime as fp16.
    expect(cast).toEqual(expect.arrayContaining(['loupe_fp16:present.0.key', 'loupe_fp16:present.3.value', 'loupe_fp16:image_features']));
    expect(cast.length).toBeGreaterThan(12);
    const generated = await stored({ storeDtype: 'float16', taps, maxNewTokens: 2 });
    expect([...fp16.keys()].sort()).toEqual([...fp32.keys()].sort());
    let floats = 0;
    for (const [key, want32] of fp32) {
      for (const got of [fp16.get(key)!, generated.get(key)!]) {
        if (want32.dtype !== 'float32') {
          expect(Array.from(got.data as Int32Array), key).toEqual(Array.from(want32.data as Int32Array));
          continue;
        }
        expect(got.dtype, key).toBe('float16');
        const want = f32ToF16(toFloat32(want32));
        const bits = got.data as Uint16Array;
        let differ = 0;
        for (let i = 0; i < want.length; i++) if (bits[i] !== want[i]) differ++;
        expect(differ, `${key}: ${differ} of ${want.length} values differ`).toBe(0);
        floats += want.length;
      }
    }
    expect(floats).toBeGreaterThan(100_000);
  });

  it('a shared output buffer the runtime refuses (wrong shape) falls back to copying: the run completes with the same bits', async () => {
    const want = await stored({ storeDtype: 'float16', taps });
    // Read by the compute worker when it starts (a worker thread copies the environment then): a second engine.
    process.env.LOUPE_TEST_SHARED_WIDTH_OFFSET = '1';
    const main = engine;
    try {
      engine = await startTestEngine();
      const got = await stored({ storeDtype: 'float16', taps });
      expect(got.size).toBe(want.size);
      for (const [key, t] of want) expect(Array.from(got.get(key)!.data as Uint16Array), key).toEqual(Array.from(t.data as Uint16Array));
    } finally {
      delete process.env.LOUPE_TEST_SHARED_WIDTH_OFFSET;
      await engine.close();
      engine = main;
    }
  });
});
