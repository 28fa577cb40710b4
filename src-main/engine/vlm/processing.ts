/**
 * Tokenizer, chat template and image processor from the model folder, through
 * transformers.js (the same code and configs the onnx-community exports are published for),
 * so prompts and pixel values match Hugging Face's without a reimplementation of ours.
 */
import { AutoProcessor, AutoTokenizer, RawImage, env } from '@huggingface/transformers';
import type { Processor, PreTrainedTokenizer } from '@huggingface/transformers';
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { HostTensor } from '../../../src-shared/tensor/dtype.ts';
import { type ChatTemplateChoice, resolveChatTemplate } from './chat-templates.ts';
import { usePillowResize } from './pillow-resize.ts';
import { decodeImageRgb } from '../image-decode.ts';

// Offline by design: models come from local folders only, never the hub.
env.allowRemoteModels = false;
env.allowLocalModels = true;
// Resize as the Hugging Face processors do (Pillow), not as sharp's affine point-samples.
usePillowResize();

/**
 * Families whose adapters preprocess images themselves (vlm/families.ts) and never call the folder's processor: a
 * processor transformers.js does not know (LlavaNextImageProcessor — transformers.js 4.3.1 has no LLaVA-NeXT) must not
 * stop their folders from loading.
 */
const OWN_IMAGE_PROCESSING: ReadonlySet<string> = new Set(['llava-next']);

/** A processor that says why it cannot be used, if anything calls it. */
function processorStandIn(family: string, cause: Error): Processor {
  const refuse = () => {
    throw new LoupeError('bad-input', `the ${family} family preprocesses images itself; transformers.js cannot load this folder's processor (${cause.message})`);
  };
  return new Proxy(refuse, { get: (_t, key) => (key === 'then' ? undefined : refuse()) }) as unknown as Processor;
}

/** What stands in for the image in a blind run. */
export type ImageInput = { kind: 'files'; paths: string[] } | { kind: 'blank'; count: number } | { kind: 'none' };

export interface EncodedInputs {
  inputIds: HostTensor;
  pixelValues?: HostTensor;
  prompt: string;
}

/**
 * The size of the blind baseline's blank image: the processor's input size (`crop_size`, or `size`
 * as height × width or shortest edge); for Qwen2-VL-style processors, which size images by pixel
 * count (`min_pixels`), the smallest square they accept, rounded up to whole merged patches.
 * Never 0×0: a processor whose size cannot be read is an error.
 */
export function blankSize(preprocessor: Record<string, unknown>): { width: number; height: number } {
  const crop = (preprocessor.crop_size ?? preprocessor.size) as { height?: number; width?: number; shortest_edge?: number; min_pixels?: number } | number | undefined;
  if (typeof crop === 'number') return { width: crop, height: crop };
  const side = crop?.shortest_edge;
  const width = crop?.width ?? side;
  const height = crop?.height ?? side;
  if (width && height) return { width, height };
  const minPixels = Number(preprocessor.min_pixels ?? crop?.min_pixels);
  const factor = Number(preprocessor.patch_size ?? 14) * Number(preprocessor.merge_size ?? 2);
  if (minPixels > 0 && factor > 0) {
    const s = Math.ceil(Math.sqrt(minPixels) / factor) * factor;
    return { width: s, height: s };
  }
  throw new LoupeError('bad-input', `preprocessor_config.json gives no image size for a blank image (no crop_size, size or min_pixels)`);
}

export class VlmProcessing {
  readonly tokenizer: PreTrainedTokenizer;
  readonly processor: Processor;
  /** preprocessor_config.json (sizes the blind baseline's blank image). */
  private readonly preprocessor: Record<string, unknown>;
  /** Where the chat template came from (null when loaded without a family: the tokenizer's own only). */
  readonly chatTemplate: ChatTemplateChoice | null;

  private constructor(tokenizer: PreTrainedTokenizer, processor: Processor, preprocessor: Record<string, unknown>, chatTemplate: ChatTemplateChoice | null) {
    this.tokenizer = tokenizer;
    this.processor = processor;
    this.preprocessor = preprocessor;
    this.chatTemplate = chatTemplate;
  }

  /**
   * `family` (model-folder.ts) enables the chat-template fallbacks: chat_template.jinja /
   * chat_template.json beside tokenizer_config.json, else the family's published template
   * (vlm/chat-templates.ts) — transformers.js's tokenizer reads only tokenizer_config.json.
   */
  static async load(modelDir: string, preprocessor: Record<string, unknown>, family?: string): Promise<VlmProcessing> {
    const chatTemplate = family ? resolveChatTemplate(modelDir, family) : null;
    try {
      const tokenizer = await AutoTokenizer.from_pretrained(modelDir);
      if (chatTemplate?.template) tokenizer.chat_template = chatTemplate.template;
      const processor = await AutoProcessor.from_pretrained(modelDir).catch((e: Error) => {
        if (family && OWN_IMAGE_PROCESSING.has(family)) return processorStandIn(family, e);
        throw e;
      });
      return new VlmProcessing(tokenizer, processor, preprocessor, chatTemplate);
    } catch (e) {
      throw new LoupeError('bad-input', `cannot load the tokenizer/processor of ${modelDir}: ${(e as Error).message}`);
    }
  }

  /**
   * The chat-templated prompt with one image placeholder per image. `prefix.text` (the
   * text-prefix control) goes into the user turn right before the first image's placeholder
   * text (before the question when there is no image), followed by a space. Templates differ in
   * where they put images relative to the text (some list every image first whatever the content
   * order), so the place is found, not assumed: the first character where the prompt with images
   * and the prompt without them differ, never after the first image token.
   */
  prompt(question: string, numImages: number, prefix?: { text?: string; imageToken?: string }): string {
    const render = (n: number, text: string) => {
      const content = [...Array.from({ length: n }, () => ({ type: 'image' })), { type: 'text', text }];
      return this.tokenizer.apply_chat_template([{ role: 'user', content }] as never, { tokenize: false, add_generation_prompt: true }) as string;
    };
    const text = prefix?.text?.trim();
    if (!text) return render(numImages, question);
    if (prefix?.imageToken && text.includes(prefix.imageToken)) throw new LoupeError('bad-input', `textPrefix must not contain the image placeholder ${prefix.imageToken}`);
    if (numImages === 0) return render(0, `${text} ${question}`);
    const withImages = render(numImages, question);
    const without = render(0, question);
    let at = 0;
    while (at < withImages.length && at < without.length && withImages[at] === without[at]) at++;
    const first = prefix?.imageToken ? withImages.indexOf(prefix.imageToken) : -1;
    if (first >= 0) at = Math.min(at, first);
    return `${withImages.slice(0, at)}${text} ${withImages.slice(at)}`;
  }

  tokenIdsOf(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false });
  }

  decode(ids: number[]): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: true });
  }

  /** pixel_values for images alone (no prompt), through the folder's own image processor. */
  async pixelValues(image: ImageInput): Promise<HostTensor> {
    const images = await this.images(image);
    const imageProcessor = (this.processor as unknown as { image_processor: (i: RawImage[]) => Promise<{ pixel_values: { dims: number[]; data: Float32Array } }> }).image_processor;
    const { pixel_values } = await imageProcessor(images);
    return { dtype: 'float32', shape: [...pixel_values.dims], data: pixel_values.data };
  }

  /**
   * The processor's own call, for families whose processor expands image tokens correctly
   * (Qwen2-VL, Idefics3): text first, then images. Every output becomes a host tensor.
   */
  async processWithProcessor(prompt: string, images: RawImage[]): Promise<Record<string, HostTensor>> {
    const call = this.processor as unknown as (t: string, i?: RawImage[]) => Promise<Record<string, { type: string; dims: number[]; data: HostTensor['data'] } | unknown>>;
    const out = await call(prompt, images.length ? images : undefined);
    const tensors: Record<string, HostTensor> = {};
    for (const [name, v] of Object.entries(out)) {
      const t = v as { type?: string; dims?: number[]; data?: HostTensor['data'] };
      if (!t?.dims || !t.data) continue;
      const dtype = t.type === 'bool' ? 'bool' : (t.type as HostTensor['dtype']);
      tensors[name] = { dtype, shape: [...t.dims], data: t.type === 'bool' ? Uint8Array.from(t.data as unknown as ArrayLike<number>) : t.data };
    }
    return tensors;
  }

  /**
   * Prompt → input_ids and pixel_values. The image placeholders are expanded here, one run per
   * image, because transformers.js's LlavaProcessor expands only the first `<image>` of a prompt
   * (multi-image prompts such as two-view correspondence would otherwise be wrong).
   */
  async encode(question: string, image: ImageInput, expand: { imageToken: string; tokensPerImage: number }, textPrefix?: string): Promise<EncodedInputs> {
    const images = await this.images(image);
    const prompt = this.prompt(question, images.length, { ...(textPrefix && { text: textPrefix }), imageToken: expand.imageToken });
    const expanded = prompt.split(expand.imageToken).join(expand.imageToken.repeat(expand.tokensPerImage));
    const ids = this.tokenizer.encode(expanded);
    const inputIds: HostTensor = { dtype: 'int64', shape: [1, ids.length], data: BigInt64Array.from(ids, BigInt) };
    if (images.length === 0) return { prompt, inputIds };
    return { prompt, inputIds, pixelValues: await this.pixelValues(image) };
  }

  async images(image: ImageInput): Promise<RawImage[]> {
    if (image.kind === 'none') return [];
    if (image.kind === 'blank') {
      // The blind baseline's blank image: all black at the processor's input size.
      const { width, height } = blankSize(this.preprocessor);
      return Array.from({ length: image.count }, () => new RawImage(new Uint8ClampedArray(width * height * 3), width, height, 3));
    }
    // Sizes and decode cost are checked from the headers before decoding (limits.ts); grey+alpha PNGs decode too.
    return Promise.all(image.paths.map((p) => decodeImageRgb(p, `image ${p}`)));
  }
}
