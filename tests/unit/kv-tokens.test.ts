/** Reading stored K/V captures for the probes: question tokens in the prompt, image grids, token matrices. */
import { describe, expect, it } from 'vitest';
import { expressionSpan } from '../../src-main/experiments/inside-the-llm/probes.ts';
import { gatherTokens, imageGrids, kvTensors } from '../../src-main/experiments/inside-the-llm/tokens.ts';
import { locateQuestion, questionWords } from '../../src-main/engine/vlm/prompt-tokens.ts';

describe('locateQuestion', () => {
  const vocab = ['<s>', 'USER', ':', '<image>', 'which', 'marker', 'is', 'on', 'the', 'rightmost', 'square', '?', 'ASSISTANT', '<unk>', '▁which', 'right', 'most', '\n'];
  const id = (w: string) => vocab.indexOf(w);
  const piece = (i: number) => vocab[i]!.replace('▁', ' ');
  const question = 'which marker is on the rightmost square ?';

  it('finds a word-level question after the image tokens, each token with its word', () => {
    const q = ['which', 'marker', 'is', 'on', 'the', 'rightmost', 'square', '?'].map(id);
    const input = [id('<s>'), id('USER'), id(':'), id('<image>'), id('<image>'), ...q, id('ASSISTANT'), id(':')];
    expect(locateQuestion(input, q, piece, question)).toEqual(q.map((tokenId, k) => ({ position: 5 + k, tokenId, word: k })));
    expect(questionWords(`  ${question}\n`)).toHaveLength(8);
  });

  it('maps sub-word tokens to their word and takes the last occurrence', () => {
    const q = ['which', 'marker', 'is', 'on', 'the', 'right', 'most', 'square', '?'].map(id);
    const input = [...q, id('<image>'), ...q];
    expect(locateQuestion(input, q, piece, question).map((t) => [t.position, t.word])).toEqual([
      [10, 0],
      [11, 1],
      [12, 2],
      [13, 3],
      [14, 4],
      [15, 5],
      [16, 5],
      [17, 6],
      [18, 7],
    ]);
  });

  it('takes the token before when the first token merged with the template (SentencePiece ▁)', () => {
    const alone = ['▁which', 'marker', 'is'].map(id); // the question tokenized on its own
    const input = [id('<image>'), id('\n'), id('which'), id('marker'), id('is'), id('ASSISTANT')];
    expect(locateQuestion(input, alone, piece, 'which marker is')).toEqual([
      { position: 2, tokenId: id('which'), word: 0 },
      { position: 3, tokenId: id('marker'), word: 1 },
      { position: 4, tokenId: id('is'), word: 2 },
    ]);
  });

  it('gives an unknown token its word and resumes at the next word', () => {
    const q = ['which', '<unk>', 'is'].map(id);
    expect(locateQuestion([id('<s>'), ...q], q, piece, 'which zorblax is').map((t) => t.word)).toEqual([0, 1, 2]);
  });

  it('names the question it cannot find', () => {
    expect(() => locateQuestion([1, 2, 3], [4, 5], piece, 'which marker')).toThrow(/cannot find the question "which marker".*taps.promptKV/);
  });
});

describe('expressionSpan', () => {
  it('finds the expression among the question words, ignoring case and edge punctuation', () => {
    expect(expressionSpan(questionWords('which marker is on the rightmost square ?'), 'the rightmost square')).toEqual([4, 7]);
    expect(expressionSpan(['Is', 'it', 'The', 'Red', 'circle?'], 'the red circle')).toEqual([2, 5]);
    expect(expressionSpan(['which', 'marker'], 'the red circle')).toBeNull();
  });
});

describe('image grids and token matrices', () => {
  it('takes each image’s last tile as a complete grid, skipping prefix tokens', () => {
    // rows (position, image, tile, row, col): image 0 = a prefix token + a 1×2 grid; image 1 = tile 0 (1×1) + tile 1 (2×1, global).
    const map = [10, 0, 0, -1, -1, 11, 0, 0, 0, 1, 12, 0, 0, 0, 0, 13, 1, 0, 0, 0, 14, 1, 1, 1, 0, 15, 1, 1, 0, 0];
    const grids = imageGrids(map);
    expect(grids.get(0)).toEqual({ grid: { rows: 1, cols: 2 }, tokenOf: Int32Array.from([2, 1]) });
    expect(grids.get(1)).toEqual({ grid: { rows: 2, cols: 1 }, tokenOf: Int32Array.from([5, 4]) });
    // An incomplete grid (a 2×2 with one patch missing) is left out.
    expect(imageGrids([0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 2, 0, 0, 1, 0]).size).toBe(0);
  });

  it('gathers a token’s vector across KV heads', () => {
    // [heads 2, tokens 3, dim 2]: head h, token j, x → 100h + 10j + x.
    const data = Float32Array.from({ length: 12 }, (_, i) => 100 * Math.floor(i / 6) + 10 * Math.floor((i % 6) / 2) + (i % 2));
    expect(Array.from(gatherTokens({ dtype: 'float32', shape: [2, 3, 2], data }, [2, 0]))).toEqual([20, 21, 120, 121, 0, 1, 100, 101]);
  });

  it('lists the K/V tensors by layer then key/value', () => {
    const t = { dtype: 'float32' as const, shape: [1], data: new Float32Array(1) };
    expect(kvTensors({ 'image_kv.10.value': t, 'image_kv.2.key': t, 'image_kv.2.value': t, 'prompt_kv.0.key': t, image_token_map: t }, 'image').map((k) => k.name)).toEqual(['image_kv.2.key', 'image_kv.2.value', 'image_kv.10.value']);
  });
});
