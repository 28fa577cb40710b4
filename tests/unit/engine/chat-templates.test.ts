/**
 * The family chat templates render, through transformers.js's own apply_chat_template (its
 * Jinja), to the prompts their checkpoints produce; and which template a folder gets.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoTokenizer } from '@huggingface/transformers';
import type { PreTrainedTokenizer } from '@huggingface/transformers';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAMILY_CHAT_TEMPLATES, resolveChatTemplate } from '../../../src-main/engine/vlm/chat-templates.ts';
import { REPO_ROOT, RESOURCES_DIR } from '../../../src-main/paths.ts';

const ALT = join(REPO_ROOT, 'tests', 'fixtures', 'alt-llava', 'model');

let tokenizer: PreTrainedTokenizer;
beforeAll(async () => {
  tokenizer = await AutoTokenizer.from_pretrained(join(RESOURCES_DIR, 'models', 'micro-llava'));
});

const render = (family: string, images: number, text: string) =>
  tokenizer.apply_chat_template([{ role: 'user', content: [...Array.from({ length: images }, () => ({ type: 'image' })), { type: 'text', text }] }] as never, {
    tokenize: false,
    add_generation_prompt: true,
    chat_template: FAMILY_CHAT_TEMPLATES[family]!.template,
  }) as string;

describe('family chat templates', () => {
  it('llava: the llava-1.5-hf prompt', () => {
    expect(render('llava', 1, 'What colour is it?')).toBe('USER: <image>\nWhat colour is it? ASSISTANT:');
    expect(render('llava', 2, 'Same?')).toBe('USER: <image>\n<image>\nSame? ASSISTANT:');
  });

  it('llava-onevision: ChatML turns with <image>', () => {
    expect(render('llava-onevision', 1, 'What colour is it?')).toBe('<|im_start|>user <image>\nWhat colour is it?<|im_end|><|im_start|>assistant\n');
  });

  it('qwen2-vl: ChatML with the default system turn and vision_start/image_pad/vision_end', () => {
    expect(render('qwen2-vl', 1, 'What colour is it?')).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What colour is it?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('idefics3 / SmolVLM: User:<image>…<end_of_utterance>', () => {
    expect(render('idefics3', 1, 'What colour is it?')).toBe('<|im_start|>User:<image>What colour is it?<end_of_utterance>\nAssistant:');
    expect(render('idefics3', 0, 'Hi')).toBe('<|im_start|>User: Hi<end_of_utterance>\nAssistant:');
  });
});

describe('which template a folder gets', () => {
  function copyWithout(): string {
    const dir = mkdtempSync(join(tmpdir(), 'loupe-chat-'));
    cpSync(ALT, dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    delete config.chat_template;
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config));
    return dir;
  }

  it('its own: tokenizer_config.json, then chat_template.jinja, then chat_template.json', () => {
    expect(resolveChatTemplate(ALT, 'llava')).toEqual({ origin: 'tokenizer_config.json', template: null, note: null });
    const dir = copyWithout();
    writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'from json' }));
    expect(resolveChatTemplate(dir, 'llava')).toEqual({ origin: 'chat_template.json', template: 'from json', note: null });
    writeFileSync(join(dir, 'chat_template.jinja'), 'from jinja');
    expect(resolveChatTemplate(dir, 'llava')).toEqual({ origin: 'chat_template.jinja', template: 'from jinja', note: null });
  });

  it('none: the family default, with a note naming its source', () => {
    const r = resolveChatTemplate(copyWithout(), 'llava');
    expect(r.origin).toBe('family');
    expect(r.template).toBe(FAMILY_CHAT_TEMPLATES.llava!.template);
    expect(r.note).toMatch(/no chat template in the model folder.*llava family's published template \(llava-hf\/llava-1\.5-7b-hf\)/);
    expect(() => resolveChatTemplate(copyWithout(), 'mystery')).toThrow(/no chat template .* no default for family mystery/);
  });

  it('paligemma: never a template (its processor builds the prompt), no note, no error', () => {
    expect(resolveChatTemplate(copyWithout(), 'paligemma')).toEqual({ origin: 'processor', template: null, note: null });
    expect(resolveChatTemplate(ALT, 'paligemma')).toEqual({ origin: 'processor', template: null, note: null });
  });
});
