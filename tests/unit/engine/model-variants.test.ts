/**
 * Model variants: parsing (`--variant`, specs), and picking one file per session from a folder's
 * names alone (the files here are empty; picking never opens them).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import { methods } from '../../../src-shared/contract/methods.ts';
import { EncodeImagesSpec, ReadoutSpec, VlmForwardSpec } from '../../../src-shared/jobs/specs.ts';
import { formatVariant, parseSessionFile, parseVariantFlag } from '../../../src-shared/jobs/variant.ts';
import { modelVariants, openModelFolder, sessionVariants } from '../../../src-main/engine/model-folder.ts';
import { companionsOf } from '../../../src-main/engine/vlm/overlay.ts';

/** A model folder with these onnx/ entries (empty files; `name=bytes` gives a size). */
function folderWith(entries: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'loupe-variants-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llava' }));
  writeFileSync(join(dir, 'preprocessor_config.json'), '{}');
  mkdirSync(join(dir, 'onnx'));
  for (const e of entries) {
    const [name, bytes = '0'] = e.split('=');
    writeFileSync(join(dir, 'onnx', name!), Buffer.alloc(Number(bytes)));
  }
  return dir;
}

/** The onnx-community pattern: fp32 + fp16 vision encoder, q4 decoder (with external data), no fp32 decoder. */
const MIXED = [
  'vision_encoder.onnx=10',
  'vision_encoder_fp16.onnx=5',
  'embed_tokens.onnx=4',
  'embed_tokens_q4.onnx=1',
  'decoder_model_merged_q4.onnx=2',
  'decoder_model_merged_q4.onnx_data=100',
  'decoder_model_merged_q4f16.onnx=3',
  'decoder_model_merged.loupe-taps-0123456789abcdef.onnx=7',
];

describe('--variant', () => {
  it('one dtype for every session, or session=dtype pairs', () => {
    expect(parseVariantFlag('q4')).toBe('q4');
    expect(parseVariantFlag(' fp16 ')).toBe('fp16');
    expect(parseVariantFlag('decoder_model_merged=q4,vision_encoder=fp32')).toEqual({ decoder_model_merged: 'q4', vision_encoder: 'fp32' });
    expect(parseVariantFlag('embed_tokens = q8')).toEqual({ embed_tokens: 'q8' });
  });

  it('refuses unknown dtypes and sessions, naming what is accepted', () => {
    expect(() => parseVariantFlag('q3')).toThrow(/unknown dtype "q3".*fp32, fp16, q8/);
    expect(() => parseVariantFlag('quantized')).toThrow(/unknown dtype/);
    expect(() => parseVariantFlag('decoder=q4')).toThrow(/unknown session "decoder".*vision_encoder, embed_tokens, decoder_model_merged/);
    expect(() => parseVariantFlag('decoder_model_merged=q9')).toThrow(/unknown dtype "q9" for decoder_model_merged/);
    expect(() => parseVariantFlag('decoder_model_merged=q4,decoder_model_merged=fp16')).toThrow(/given twice/);
    expect(() => parseVariantFlag('decoder_model_merged=q4=x')).toThrow();
  });

  it('formats back', () => {
    expect(formatVariant(undefined)).toBe('default');
    expect(formatVariant('q4')).toBe('q4');
    expect(formatVariant({ decoder_model_merged: 'q4', vision_encoder: 'fp32' })).toBe('vision_encoder=fp32,decoder_model_merged=q4');
  });
});

describe('variant in run specs', () => {
  it('is optional: specs written before it parse unchanged', () => {
    expect(VlmForwardSpec.parse({}).variant).toBeUndefined();
    expect(ReadoutSpec.parse({ limit: 3 }).variant).toBeUndefined();
    expect(EncodeImagesSpec.parse({ storeDtype: 'float32' }).variant).toBeUndefined();
  });

  it('takes one dtype or a per-session map, and nothing else', () => {
    expect(VlmForwardSpec.parse({ variant: 'q4' }).variant).toBe('q4');
    expect(ReadoutSpec.parse({ variant: { vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' } }).variant).toEqual({ vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' });
    expect(EncodeImagesSpec.parse({ variant: { vision_encoder: 'fp16' } }).variant).toEqual({ vision_encoder: 'fp16' });
    for (const bad of ['q3', '', {}, { decoder: 'q4' }, { decoder_model_merged: 'q9' }, ['q4']]) expect(VlmForwardSpec.safeParse({ variant: bad }).success, JSON.stringify(bad)).toBe(false);
  });

  it('travels with a sweep base into its readout specs, and jobs/start', () => {
    const sweep = methods['sweeps/start'].params.parse({ modelId: 'm', datasetId: 'd', name: 's', base: { variant: 'q4' }, ablations: [{ edits: [{ op: 'zero', part: 'llm', tokens: { kind: 'image' } }] }] });
    expect(sweep.base.variant).toBe('q4');
    const job = methods['jobs/start'].params.parse({ kind: 'vlm-forward', modelId: 'm', datasetId: 'd', spec: { variant: { decoder_model_merged: 'q4' } } });
    expect(job.spec.variant).toEqual({ decoder_model_merged: 'q4' });
  });
});

describe('picking a file per session', () => {
  it('names: <session><suffix>.onnx only', () => {
    expect(parseSessionFile('decoder_model_merged_q4f16.onnx')).toEqual({ session: 'decoder_model_merged', dtype: 'q4f16' });
    expect(parseSessionFile('decoder_model_merged_quantized.onnx')).toEqual({ session: 'decoder_model_merged', dtype: 'q8' });
    expect(parseSessionFile('vision_encoder.onnx')).toEqual({ session: 'vision_encoder', dtype: 'fp32' });
    for (const other of ['vision_encoder.onnx_data', 'vision_encoder.loupe-taps-0123.onnx', 'decoder_model.onnx', 'vision_encoder_q5.onnx']) expect(parseSessionFile(other)).toBeNull();
  });

  it('default: fp32, else the first dtype present in the fixed order', () => {
    const dir = folderWith(MIXED);
    const folder = openModelFolder(dir);
    expect(folder.dtypes).toEqual({ vision_encoder: 'fp32', embed_tokens: 'fp32', decoder_model_merged: 'q4' });
    expect(folder.files.decoder_model_merged).toBe(join(dir, 'onnx', 'decoder_model_merged_q4.onnx'));
  });

  it('one dtype for all sessions, or per session (the rest keep the default)', () => {
    const dir = folderWith([...MIXED, 'vision_encoder_q4.onnx']);
    expect(openModelFolder(dir, 'q4').dtypes).toEqual({ vision_encoder: 'q4', embed_tokens: 'q4', decoder_model_merged: 'q4' });
    const mixed = openModelFolder(dir, { decoder_model_merged: 'q4f16', vision_encoder: 'fp16' });
    expect(mixed.dtypes).toEqual({ vision_encoder: 'fp16', embed_tokens: 'fp32', decoder_model_merged: 'q4f16' });
    expect(mixed.files.vision_encoder).toBe(join(dir, 'onnx', 'vision_encoder_fp16.onnx'));
  });

  it('a missing variant names the file and lists what the session has', () => {
    const dir = folderWith(MIXED);
    let error: unknown;
    try {
      openModelFolder(dir, 'q4');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LoupeError);
    expect((error as LoupeError).code).toBe('bad-input');
    expect((error as Error).message).toMatch(/no onnx\/vision_encoder_q4\.onnx \(variant q4 of vision_encoder\); vision_encoder variants in this folder: fp32, fp16/);
    expect(() => openModelFolder(dir, { decoder_model_merged: 'fp32' })).toThrow(/no onnx\/decoder_model_merged\.onnx .*decoder_model_merged variants in this folder: q4, q4f16/);
    expect(() => openModelFolder(folderWith(['vision_encoder.onnx', 'embed_tokens.onnx']))).toThrow(/no onnx\/decoder_model_merged\.onnx \(nor any dtype variant/);
  });

  it('lists each session\'s variants with sizes (external data counted), and the dtypes all sessions share', () => {
    const dir = folderWith([...MIXED, 'vision_encoder_q4.onnx=3']);
    const v = sessionVariants(join(dir, 'onnx'));
    expect(v.decoder_model_merged).toEqual([
      { dtype: 'q4', file: 'decoder_model_merged_q4.onnx', bytes: 102 },
      { dtype: 'q4f16', file: 'decoder_model_merged_q4f16.onnx', bytes: 3 },
    ]);
    expect(v.vision_encoder.map((x) => x.dtype)).toEqual(['fp32', 'fp16', 'q4']);
    const listed = modelVariants({ id: 'm', path: dir });
    expect(listed.common).toEqual(['q4']);
    expect(listed.sessions.map((s) => [s.session, s.default])).toEqual([
      ['vision_encoder', 'fp32'],
      ['embed_tokens', 'fp32'],
      ['decoder_model_merged', 'q4'],
    ]);
  });
});

describe('graph-cache twin', () => {
  it('links a graph with its external data, not the other variants or old rewrites', () => {
    const entries = ['decoder_model_merged.onnx', 'decoder_model_merged.onnx_data', 'decoder_model_merged.onnx_data_1', 'decoder_model_merged_q4.onnx', 'decoder_model_merged_q4.onnx_data', 'decoder_model_merged.loupe-taps-0123.onnx', 'vision_encoder.onnx', 'shared_weights.bin'];
    expect(companionsOf('decoder_model_merged.onnx', entries)).toEqual(['decoder_model_merged.onnx', 'decoder_model_merged.onnx_data', 'decoder_model_merged.onnx_data_1', 'shared_weights.bin']);
    expect(companionsOf('decoder_model_merged_q4.onnx', entries)).toEqual(['decoder_model_merged_q4.onnx', 'decoder_model_merged_q4.onnx_data', 'shared_weights.bin']);
  });
});
