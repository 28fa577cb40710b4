/**
 * What differs between VLM families on the way in: how the prompt's image tokens are
 * expanded, which extra inputs the vision encoder takes, how image tokens map to patches,
 * and (Qwen2-VL) the 3-axis position ids. The forward pass itself is shared.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { ModelFolder } from '../model-folder.ts';
import { mropePositionIds } from './mrope.ts';
import type { ImageInput, VlmProcessing } from './processing.ts';
import { type ImageTokenPosition, idefics3TokenMap, imageTokenMap, llavaGrid, qwenTokenMap } from './token-map.ts';

export interface FamilyInputs {
  prompt: string;
  inputIds: HostTensor;
  pixelValues?: HostTensor;
  visionExtras?: Record<string, HostTensor>;
  imageTokens: ImageTokenPosition[];
  mrope?: { ids: number[][]; ropeDelta: number };
}

export interface Family {
  /** `textPrefix`: the text-prefix control, placed before the first image (VlmProcessing.prompt). */
  encode(question: string, image: ImageInput, textPrefix?: string): Promise<FamilyInputs>;
  /** Token map for input ids prepared elsewhere (fixtures, stored runs) — LLaVA-style only. */
  mapTokens(inputIds: BigInt64Array): ImageTokenPosition[];
}

function llava(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const grid = llavaGrid(folder.config);
  const tokensPerImage = grid.prefix + grid.rows * grid.cols;
  const mapTokens = (ids: BigInt64Array) => imageTokenMap(ids, imageTokenId, grid);
  return {
    mapTokens,
    async encode(question, image, textPrefix) {
      const e = await p.encode(question, image, { imageToken, tokensPerImage }, textPrefix);
      return { ...e, imageTokens: mapTokens(e.inputIds.data as BigInt64Array) };
    },
  };
}

function qwen2vl(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const merge = Number((folder.config.vision_config as { spatial_merge_size?: number } | undefined)?.spatial_merge_size ?? 2);
  return {
    mapTokens: () => {
      throw new LoupeError('bad-input', 'Qwen2-VL token maps need the image grids: encode through the processor');
    },
    async encode(question, image, textPrefix) {
      const images = await p.images(image);
      const prompt = p.prompt(question, images.length, { ...(textPrefix && { text: textPrefix }), imageToken });
      const out = await p.processWithProcessor(prompt, images);
      const ids = out.input_ids!.data as BigInt64Array;
      const thw = out.image_grid_thw;
      const grids = thw ? Array.from({ length: thw.shape[0]! }, (_, i) => ({ t: Number(thw.data[i * 3]), h: Number(thw.data[i * 3 + 1]), w: Number(thw.data[i * 3 + 2]) })) : [];
      const { ids: pos, ropeDelta } = mropePositionIds(ids, imageTokenId, grids, merge);
      return {
        prompt,
        inputIds: out.input_ids!,
        ...(out.pixel_values && { pixelValues: out.pixel_values }),
        ...(thw && { visionExtras: { image_grid_thw: thw } }),
        imageTokens: qwenTokenMap(ids, imageTokenId, grids, merge),
        mrope: { ids: pos, ropeDelta },
      };
    },
  };
}

function idefics3(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const seqLen = Number((folder.processorConfig.image_seq_len as number | undefined) ?? (folder.config.image_seq_len as number | undefined) ?? 64);
  return {
    mapTokens: () => {
      throw new LoupeError('bad-input', 'Idefics3 token maps need the tile layout: encode through the processor');
    },
    async encode(question, image, textPrefix) {
      const images = await p.images(image);
      const prompt = p.prompt(question, images.length, { ...(textPrefix && { text: textPrefix }), imageToken });
      const out = await p.processWithProcessor(prompt, images);
      const ids = out.input_ids!.data as BigInt64Array;
      // Tiles per image: rows×cols split tiles plus the global view (just the global view when not split).
      const rows = out.rows ? Array.from(out.rows.data as ArrayLike<number | bigint>, Number) : images.map(() => 0);
      const cols = out.cols ? Array.from(out.cols.data as ArrayLike<number | bigint>, Number) : images.map(() => 0);
      const tiles = images.map((_, i) => rows[i]! * cols[i]! + 1);
      const extras: Record<string, HostTensor> = {};
      if (out.pixel_attention_mask) extras.pixel_attention_mask = out.pixel_attention_mask;
      return {
        prompt,
        inputIds: out.input_ids!,
        ...(out.pixel_values && { pixelValues: out.pixel_values }),
        visionExtras: extras,
        imageTokens: images.length ? idefics3TokenMap(ids, imageTokenId, tiles, seqLen) : [],
      };
    },
  };
}

export function familyFor(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  switch (folder.family) {
    case 'llava':
    case 'llava-onevision':
      return llava(folder, p, imageTokenId, imageToken);
    case 'qwen2-vl':
      return qwen2vl(folder, p, imageTokenId, imageToken);
    case 'idefics3':
      return idefics3(folder, p, imageTokenId, imageToken);
    default:
      throw new LoupeError('bad-input', `model family ${folder.family} has no input adapter`);
  }
}
