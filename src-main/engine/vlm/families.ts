/**
 * What differs between VLM families on the way in: how the prompt's image tokens are
 * expanded, which extra inputs the vision encoder takes, how image tokens map to patches,
 * and (Qwen2-VL) the 3-axis position ids. The forward pass itself is shared.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import type { ModelFolder } from '../model-folder.ts';
import { anyresConfig, anyresExpandPrompt, anyresImages, anyresTokenMap, isAnyres } from './anyres-images.ts';
import { idefics3BlankImages, idefics3ExpandPrompt, idefics3Images } from './idefics3-images.ts';
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
  /** The decoder's first position id when not 0 (PaliGemma: 1, as HF's `cache_position + 1` and transformers.js). */
  positionIdStart?: number;
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

/** Python's round(): halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * HF's Qwen2VLImageProcessor `smart_resize` (image_processing_qwen2_vl.py, v4.46–v4.49) rounds each side to a
 * multiple of patch_size·merge_size with Python's round() — half to even — where transformers.js 4.3.1's
 * `smart_resize` uses Math.round (half up). A side of (k + ½) factors (70 px = 2.5 × 28) becomes k factors in HF and
 * k + 1 in transformers.js: another grid, another image-token count. This replaces the size rule of the folder's
 * image processor (this instance only) by HF's; the max_pixels / min_pixels branches are HF's too (they agree with
 * transformers.js), and sides under one factor keep transformers.js's upscaling (HF raises there).
 */
function useHfSmartResize(p: VlmProcessing): void {
  type QwenImageProcessor = { min_pixels?: number; max_pixels?: number; patch_size?: number; merge_size?: number; get_resize_output_image_size: (image: { width: number; height: number }, size: unknown) => [number, number] };
  const ip = (p.processor as unknown as { image_processor?: QwenImageProcessor }).image_processor;
  if (!ip?.get_resize_output_image_size || !ip.patch_size || !ip.merge_size) return;
  const original = ip.get_resize_output_image_size.bind(ip);
  const factor = ip.patch_size * ip.merge_size;
  const minPixels = ip.min_pixels ?? 56 * 56;
  const maxPixels = ip.max_pixels ?? 28 * 28 * 1280;
  ip.get_resize_output_image_size = (image, size) => {
    const { height, width } = image;
    if (height < factor || width < factor) return original(image, size);
    let h = roundHalfEven(height / factor) * factor;
    let w = roundHalfEven(width / factor) * factor;
    if (h * w > maxPixels) {
      const beta = Math.sqrt((height * width) / maxPixels);
      h = Math.max(factor, Math.floor(height / beta / factor) * factor);
      w = Math.max(factor, Math.floor(width / beta / factor) * factor);
    } else if (h * w < minPixels) {
      const beta = Math.sqrt(minPixels / (height * width));
      h = Math.ceil((height * beta) / factor) * factor;
      w = Math.ceil((width * beta) / factor) * factor;
    }
    return [w, h];
  };
}

function qwen2vl(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const merge = Number((folder.config.vision_config as { spatial_merge_size?: number } | undefined)?.spatial_merge_size ?? 2);
  useHfSmartResize(p);
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

/**
 * LLaVA-NeXT and LLaVA-OneVision ("anyres"): pixel_values [images, crops + 1, 3, H, W] + image_sizes, the `<image>`
 * expansion and the token map as HF's LlavaNext/LlavaOnevision image processors, processors and pack_image_features
 * make them (vlm/anyres-images.ts: base view + the best pinpoint's crops, unpadded, one image_newline per grid row).
 * transformers.js has no LLaVA-NeXT and runs OneVision as single-crop LLaVA, so none of it goes through its
 * processor; the prompt is tokenized by the folder's tokenizer, as HF's processors do. `image_sizes` reaches the
 * vision encoder under that name (HF's forward argument). The fixtures' vision graphs take one image per call.
 */
function anyres(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const cfg = anyresConfig(folder);
  return {
    mapTokens: () => {
      throw new LoupeError('bad-input', `${folder.family} token maps need the images' sizes: encode through the family adapter`);
    },
    async encode(question, image, textPrefix) {
      const images = await p.images(image);
      const prompt = p.prompt(question, images.length, { ...(textPrefix && { text: textPrefix }), imageToken });
      const tokenize = (text: string): HostTensor => {
        const ids = p.tokenizer.encode(text);
        return { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) };
      };
      if (images.length === 0) return { prompt, inputIds: tokenize(prompt), imageTokens: [] };
      const pre = anyresImages(images, cfg);
      const inputIds = tokenize(anyresExpandPrompt(prompt, pre.layouts.map((l) => l.tokens), imageToken));
      return {
        prompt,
        inputIds,
        pixelValues: pre.pixelValues,
        visionExtras: { image_sizes: pre.imageSizes },
        imageTokens: anyresTokenMap(inputIds.data as BigInt64Array, imageTokenId, pre.layouts, cfg.side),
      };
    },
  };
}

/**
 * Idefics3 / SmolVLM: pixel values, pixel_attention_mask and the `<row_r_col_c>` / `<global-img>` prompt expansion
 * as HF's Idefics3ImageProcessor / Idefics3Processor make them (vlm/idefics3-images.ts: Pillow resizes in HF's
 * order), not through transformers.js's Idefics3 processor, whose bilinear float resizes put pixel_values 0.18–0.82
 * (relative) off HF's and whose rows/cols (nested arrays) never reached the token map. The prompt is then tokenized
 * by the folder's tokenizer, as both processors do.
 */
function idefics3(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const seqLen = Number((folder.processorConfig.image_seq_len as number | undefined) ?? (folder.config.image_seq_len as number | undefined) ?? 64);
  return {
    mapTokens: () => {
      throw new LoupeError('bad-input', 'Idefics3 token maps need the tile layout: encode through the processor');
    },
    async encode(question, image, textPrefix) {
      const images = image.kind === 'blank' ? idefics3BlankImages(image.count, folder.preprocessor) : await p.images(image);
      const prompt = p.prompt(question, images.length, { ...(textPrefix && { text: textPrefix }), imageToken });
      if (images.length === 0) {
        const ids = p.tokenizer.encode(prompt);
        return { prompt, inputIds: { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) }, imageTokens: [] };
      }
      const pre = idefics3Images(images, folder.preprocessor);
      const ids = p.tokenizer.encode(idefics3ExpandPrompt(prompt, pre.rows, pre.cols, seqLen, { image: imageToken, fake: '<fake_token_around_image>', global: '<global-img>' }));
      const inputIds: HostTensor = { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) };
      // Tiles per image: rows×cols split tiles plus the global view (just the global view when not split).
      const tiles = pre.rows.map((r, i) => r * pre.cols[i]! + 1);
      return {
        prompt,
        inputIds,
        pixelValues: pre.pixelValues,
        visionExtras: { pixel_attention_mask: pre.pixelAttentionMask },
        imageTokens: idefics3TokenMap(inputIds.data as BigInt64Array, imageTokenId, tiles, seqLen),
      };
    },
  };
}

/**
 * PaliGemma: no chat template. The prompt is what HF's PaliGemmaProcessor (v4.46) builds for a question without an
 * `<image>` placeholder (build_string_from_input): `<image>` per image, `<bos>`, the question, `\n`; each `<image>`
 * expands to image_seq_length copies (the grid of the SigLIP tower, no CLS) and the text is tokenized with no special
 * tokens added, since the processor turns the tokenizer's add_bos_token off. pixel_values come from the folder's
 * SiglipImageProcessor: the whole image resized to size.height × size.width (Pillow's filter), no crop. With no image
 * (blind 'none') the prompt is `<bos>question\n`, what build_string_from_input gives for 0 images (HF's processor
 * refuses a call without images; the model runs it). The text-prefix control goes before the image tokens —
 * `prefix <image>…<bos>question\n`, which the processor makes from a text with an explicit placeholder — so the
 * image tokens move by the prefix's length. Positions start at 1 (HF: `cache_position + 1`). Every prefill token
 * attends to every other (HF's inference mask, built inside the exported decoder from the 2-D attention_mask).
 */
function paligemma(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  const grid = llavaGrid(folder.config);
  const perImage = grid.prefix + grid.rows * grid.cols;
  const seqLen = Number(folder.preprocessor.image_seq_length ?? perImage);
  if (seqLen !== perImage) throw new LoupeError('bad-input', `preprocessor_config.json image_seq_length ${seqLen} is not the ${grid.rows}×${grid.cols} patch grid of vision_config`);
  const bos = (p.tokenizer as unknown as { bos_token?: string | null }).bos_token;
  if (!bos) throw new LoupeError('bad-input', 'the tokenizer has no bos_token (PaliGemma prompts put it after the image tokens)');
  const mapTokens = (ids: BigInt64Array) => imageTokenMap(ids, imageTokenId, grid);
  return {
    mapTokens,
    positionIdStart: 1,
    async encode(question, image, textPrefix) {
      const images = await p.images(image);
      const prefix = textPrefix?.trim();
      if (prefix?.includes(imageToken)) throw new LoupeError('bad-input', `textPrefix must not contain the image placeholder ${imageToken}`);
      const prompt = `${prefix ? `${prefix} ` : ''}${imageToken.repeat(images.length)}${bos}${question}\n`;
      const ids = p.tokenizer.encode(prompt.split(imageToken).join(imageToken.repeat(perImage)), { add_special_tokens: false });
      const inputIds: HostTensor = { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) };
      return {
        prompt,
        inputIds,
        ...(images.length > 0 && { pixelValues: await p.pixelValues(image) }),
        imageTokens: mapTokens(inputIds.data as BigInt64Array),
      };
    },
  };
}

export function familyFor(folder: ModelFolder, p: VlmProcessing, imageTokenId: number, imageToken: string): Family {
  switch (folder.family) {
    case 'llava':
      return llava(folder, p, imageTokenId, imageToken);
    case 'llava-next':
    case 'llava-onevision':
      // OneVision folders without grid pinpoints (llava_qwen2 single-crop exports) stay single-crop LLaVA.
      return isAnyres(folder) ? anyres(folder, p, imageTokenId, imageToken) : llava(folder, p, imageTokenId, imageToken);
    case 'qwen2-vl':
      return qwen2vl(folder, p, imageTokenId, imageToken);
    case 'idefics3':
      return idefics3(folder, p, imageTokenId, imageToken);
    case 'paligemma':
      return paligemma(folder, p, imageTokenId, imageToken);
    default:
      throw new LoupeError('bad-input', `model family ${folder.family} has no input adapter`);
  }
}
