/**
 * A model folder without a chat template still runs: alt-llava with `chat_template` removed
 * from tokenizer_config.json encodes its prompts with the llava family's published template
 * (`USER: <image>\n… ASSISTANT:`), and the model info the Models view shows says so.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInfo } from '../../src-shared/contract/domain.ts';
import type { Engine } from '../../src-main/engine/engine.ts';
import { openModelFolder } from '../../src-main/engine/model-folder.ts';
import { Vlm } from '../../src-main/engine/vlm/vlm.ts';
import { REPO_ROOT } from '../../src-main/paths.ts';
import { callEngine, startTestEngine } from '../helpers/engine.ts';
import { MODEL_ID, tempDir } from '../helpers/fixtures.ts';

const ALT = join(REPO_ROOT, 'tests', 'fixtures', 'alt-llava');
const IMAGE_TOKEN_ID = 99;

let engine: Engine;
let dir: string;
beforeAll(async () => {
  engine = await startTestEngine();
  dir = join(tempDir(), 'alt-llava-no-template');
  cpSync(join(ALT, 'model'), dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  delete config.chat_template;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
});
afterAll(() => engine?.close());

describe('missing chat template', () => {
  it('encodes prompts with the llava family template', async () => {
    const vlm = await Vlm.open(openModelFolder(dir), engine.compute, 'alt-llava-no-template');
    expect(vlm.processing.chatTemplate?.origin).toBe('family');
    const res = await vlm.forward('what is in the picture ?', { kind: 'files', paths: [join(ALT, 'noise.png')] }, { maxNewTokens: 2 });
    expect(res.prompt).toBe('USER: <image>\nwhat is in the picture ? ASSISTANT:');
    expect(res.inputIds.filter((t) => t === IMAGE_TOKEN_ID)).toHaveLength(64);
    expect(res.imageTokens).toHaveLength(64);
    expect(res.generatedText).toBeDefined();
    // Blind, no image: the same template without the placeholder.
    expect((await vlm.forward('name a colour', { kind: 'none' })).prompt).toBe('USER: name a colour ASSISTANT:');
  });

  it('the model info carries a note; folders with a template carry none', async () => {
    const imported = engine.importModel(dir);
    expect(imported.notes).toEqual([expect.stringMatching(/no chat template in the model folder.*llava-hf\/llava-1\.5-7b-hf/)]);
    const listed = await callEngine<ModelInfo[]>(engine, 'models/list', {});
    expect(listed.find((m) => m.id === imported.id)?.notes).toEqual(imported.notes);
    expect(listed.find((m) => m.id === MODEL_ID)?.notes).toBeUndefined();
    expect(engine.importModel(join(ALT, 'model')).notes).toBeUndefined();
  });
});
