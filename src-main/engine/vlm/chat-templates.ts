/**
 * The chat template a model folder's prompts are rendered with. Its own comes first:
 * `chat_template` in tokenizer_config.json (what transformers.js's tokenizer reads), else
 * `chat_template.jinja`, else `chat_template.json` (where newer exports keep it). A folder with
 * none — a hand-made export, an older conversion — falls back to the template its family's
 * reference checkpoint publishes, and says so (ModelInfo.notes, shown in the Models view),
 * because every item would fail without one.
 *
 * The templates are copied verbatim from the published files named with each one.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoupeError } from '../../../src-shared/contract/errors.ts';

interface FamilyTemplate {
  /** The checkpoint and file it was published in. */
  source: string;
  template: string;
}

/**
 * LLaVA-1.5: `USER: <image>\n<question> ASSISTANT:`.
 * Source: llava-hf/llava-1.5-7b-hf, chat_template.json (the same text as OpenVINO GenAI's
 * tokenizer fallback map lists for "llava-1.5, llava-v1.6-vicuna (chat_template.json)").
 * Other checkpoints of model_type `llava` (e.g. llava-interleave-qwen) publish their own; this
 * one is only what a folder without any gets.
 */
const LLAVA_1_5 =
  "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}";

/**
 * LLaVA-OneVision (llava_onevision, llava_qwen2): Qwen's ChatML turns with LLaVA's `<image>`
 * placeholder — `<|im_start|>user <image>\n<question><|im_end|><|im_start|>assistant\n`.
 * Source: llava-hf/llava-onevision-qwen2-0.5b-ov-hf, chat_template.json (mirrored in
 * huggingface/transformers tests/models/llava_onevision/test_processing_llava_onevision.py).
 * Its processor expands `<image>`, not Qwen2-VL's `<|vision_start|><|image_pad|><|vision_end|>`.
 */
const LLAVA_ONEVISION =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + ' '}}{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}{# Render all video then #}{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\n' + content['text'] }}{% endfor %}{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}{{ '\n' + content['text'] }}{% endgeneration %}{% endfor %}{% endif %}{{'<|im_end|>'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/**
 * Qwen2-VL / Qwen2.5-VL: ChatML with the default system turn and
 * `<|vision_start|><|image_pad|><|vision_end|>` per image.
 * Source: Qwen/Qwen2-VL-2B-Instruct, tokenizer_config.json / chat_template.json (the text
 * OpenVINO GenAI's fallback map lists for "Qwen2-VL-2B-Instruct (tokenizer_config.json)").
 */
const QWEN2_VL =
  "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/**
 * Idefics3 / SmolVLM: `<|im_start|>User:<image><question><end_of_utterance>\nAssistant:`.
 * Source: HuggingFaceTB/SmolVLM-Instruct, chat_template.json (mirrored in huggingface/transformers
 * tests/models/idefics3/test_processing_idefics3.py). Idefics3-8B-Llama3 publishes the same
 * text starting with `<|begin_of_text|>`; a folder without a template gets SmolVLM's.
 */
const SMOLVLM =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

/** Family (model-folder.ts) → the template its reference checkpoint publishes. */
export const FAMILY_CHAT_TEMPLATES: Readonly<Record<string, FamilyTemplate>> = {
  llava: { source: 'llava-hf/llava-1.5-7b-hf', template: LLAVA_1_5 },
  // llava-hf/llava-v1.6-vicuna-7b-hf publishes the LLaVA-1.5 text (transformers' tests/models/llava_next: its processor
  // test expects `USER: <image>\nWhat is shown in this image? ASSISTANT:` from that checkpoint); the Mistral / 34B
  // LLaVA-NeXT checkpoints publish their own ([INST] …, ChatML), which their folders carry.
  'llava-next': { source: 'llava-hf/llava-v1.6-vicuna-7b-hf', template: LLAVA_1_5 },
  'llava-onevision': { source: 'llava-hf/llava-onevision-qwen2-0.5b-ov-hf', template: LLAVA_ONEVISION },
  'qwen2-vl': { source: 'Qwen/Qwen2-VL-2B-Instruct', template: QWEN2_VL },
  idefics3: { source: 'HuggingFaceTB/SmolVLM-Instruct', template: SMOLVLM },
};

/**
 * Families whose processor builds the prompt and whose checkpoints publish no chat template: PaliGemma
 * (PaliGemmaProcessor: `<image>`… `<bos>` text `\n`, vlm/families.ts). They never get a template (no fallback,
 * no note, no error for a folder without one); a template a folder may carry is not used.
 */
export const FAMILIES_WITHOUT_CHAT_TEMPLATE: ReadonlySet<string> = new Set(['paligemma']);

export interface ChatTemplateChoice {
  /** Where it came from: a file of the folder, `family` (the fallback), or `processor` (none: FAMILIES_WITHOUT_CHAT_TEMPLATE). */
  origin: 'tokenizer_config.json' | 'chat_template.jinja' | 'chat_template.json' | 'family' | 'processor';
  /** The template text; null when tokenizer_config.json has it (the tokenizer already holds it). */
  template: string | null;
  /** Set when the fallback is used: what the Models view tells the user. */
  note: string | null;
}

function readJson(path: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** A `chat_template` value that holds a template: a non-empty string, or a non-empty named list. */
function present(value: unknown): boolean {
  return (typeof value === 'string' && value.trim() !== '') || (Array.isArray(value) && value.length > 0);
}

/** The chat template of the model folder `modelDir` of `family`; throws when it has none and the family has no default. */
export function resolveChatTemplate(modelDir: string, family: string): ChatTemplateChoice {
  if (FAMILIES_WITHOUT_CHAT_TEMPLATE.has(family)) return { origin: 'processor', template: null, note: null };
  if (present(readJson(join(modelDir, 'tokenizer_config.json'))?.chat_template)) return { origin: 'tokenizer_config.json', template: null, note: null };
  const jinja = join(modelDir, 'chat_template.jinja');
  if (existsSync(jinja)) {
    const text = readFileSync(jinja, 'utf8');
    if (text.trim()) return { origin: 'chat_template.jinja', template: text, note: null };
  }
  const json = readJson(join(modelDir, 'chat_template.json'))?.chat_template;
  if (typeof json === 'string' && json.trim()) return { origin: 'chat_template.json', template: json, note: null };
  const fallback = FAMILY_CHAT_TEMPLATES[family];
  if (!fallback) throw new LoupeError('bad-input', `model folder ${modelDir} has no chat template (tokenizer_config.json chat_template, chat_template.jinja or chat_template.json) and Loupe knows no default for family ${family}`);
  return {
    origin: 'family',
    template: fallback.template,
    note: `no chat template in the model folder (tokenizer_config.json, chat_template.jinja, chat_template.json): prompts use the ${family} family's published template (${fallback.source})`,
  };
}
