/**
 * Preprocessing parity with the Hugging Face processors, per family and image shape: Loupe's
 * pixel_values (and grids / masks) against those the Python processors computed (with Pillow) when
 * the fixtures were built (tools/hf-fixtures). Prints the table the README carries:
 *   npx vitest run --project integration tests/integration/preprocessing-parity.test.ts
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '../../src-shared/tensor/dtype.ts';
import { decodeSafetensors } from '../../src-shared/tensor/safetensors.ts';
import { ComputeClient } from '../../src-main/compute/compute-client.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { relativeError } from '../helpers/reference.ts';

interface Shape {
  image: string;
  width: number;
  height: number;
  /** pixel_values tensor name (LLaVA / Qwen: `tensor`, Idefics3: `pixel_values`). */
  tensor?: string;
  pixel_values?: string;
  pixel_attention_mask?: string;
  image_grid_thw?: number[];
}

const FAMILIES = [
  { label: 'LLaVA-1.5 (CLIPImageProcessor)', dir: 'hf-llava' },
  { label: 'Qwen2-VL (Qwen2VLImageProcessor)', dir: 'hf-qwen2-vl' },
  { label: 'Qwen2.5-VL (Qwen2VLImageProcessor)', dir: 'hf-qwen2_5-vl' },
  { label: 'Idefics3 / SmolVLM (Idefics3ImageProcessor)', dir: 'hf-idefics3' },
  { label: 'PaliGemma (SiglipImageProcessor)', dir: 'hf-paligemma' },
  { label: 'LLaVA-NeXT (LlavaNextImageProcessor)', dir: 'hf-llava-next' },
  { label: 'LLaVA-OneVision (LlavaOnevisionImageProcessor)', dir: 'hf-llava-onevision' },
];

let compute: ComputeClient;
const rows: string[] = [];
beforeAll(async () => {
  compute = new ComputeClient();
  await compute.init('cpu');
});
afterAll(() => {
  console.log(`| family (HF processor) | image (w×h) | Loupe vs HF pixel_values, max abs diff / max abs |\n|---|---|---|\n${rows.join('\n')}`);
  return compute?.close();
});

for (const f of FAMILIES) {
  describe(f.label, () => {
    const root = join(REPO_ROOT, 'tests', 'fixtures', f.dir);
    const shapes = (JSON.parse(readFileSync(join(root, 'reference.json'), 'utf8')) as { shapes: Shape[] }).shapes;
    const bytes = readFileSync(join(root, 'reference.safetensors'));
    const ref = decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).tensors;
    let vlm: Vlm;
    beforeAll(async () => {
      vlm = await Vlm.open(openModelFolder(join(root, 'model')), compute, `parity-${f.dir}`);
    });

    it(`pixel_values within 1e-3 for ${shapes.length} image shapes`, async () => {
      expect(shapes.length).toBeGreaterThanOrEqual(5);
      for (const s of shapes) {
        const enc = await vlm.family.encode('', { kind: 'files', paths: [join(root, s.image)] });
        const want = ref[(s.tensor ?? s.pixel_values)!] as HostTensor;
        expect(enc.pixelValues!.shape, `${s.width}×${s.height} shape`).toEqual(want.shape);
        const err = relativeError(enc.pixelValues!, want);
        rows.push(`| ${f.label} | ${s.width}×${s.height} | ${err.toExponential(1)} |`);
        expect(err, `${s.width}×${s.height}`).toBeLessThan(1e-3);
        if (s.image_grid_thw) expect(Array.from(enc.visionExtras!.image_grid_thw!.data as BigInt64Array, Number), `${s.width}×${s.height} grid`).toEqual(s.image_grid_thw);
        if (s.pixel_attention_mask) expect(Array.from(enc.visionExtras!.pixel_attention_mask!.data as Uint8Array, Boolean), `${s.width}×${s.height} mask`).toEqual(Array.from(ref[s.pixel_attention_mask]!.data as Uint8Array, Boolean));
      }
    });
  });
}
