/**
 * What a stored tensor is, from its name: tower, layer and kind, so an item's tensors can be
 * listed by meaning ("vision layer 3 · hidden state · [1×65×64]") instead of raw names.
 * Names come from the tap catalogue (`vision.hidden_states.N`, `text.attentions.N`, `projector`,
 * `image_kv.N.key`), the readout runner (`readout.<stage>`, `gram.<stage>`, `cls.<stage>`,
 * `zeroshot.<stage>`) and the token maps; anything else is listed as itself.
 */

export interface TensorMeaning {
  /** Where in the model: 'vision', 'projector', 'llm', or 'map' (token coordinates), 'other'. */
  tower: 'vision' | 'projector' | 'llm' | 'map' | 'other';
  /** Layer index (HF hidden_states numbering: 0 = embeddings), null when not per layer. */
  layer: number | null;
  /** What the values are: 'hidden state', 'attention', 'key', 'value', 'readout features', … */
  kind: string;
  /** One line for the list: "vision layer 3 · hidden state". */
  label: string;
  /** Sort key: tower order, then layer. */
  order: number;
}

const TOWER_ORDER = { vision: 0, projector: 1, llm: 2, map: 3, other: 4 } as const;
const FAMILY_KIND: Record<string, string> = { readout: 'readout features', gram: 'Gram patches', cls: 'CLS token', zeroshot: 'whole-image scores' };

function base(stage: string): Omit<TensorMeaning, 'label' | 'order'> | null {
  let m: RegExpExecArray | null;
  if ((m = /^vision\.hidden_states\.(\d+)$/.exec(stage))) return { tower: 'vision', layer: Number(m[1]), kind: 'hidden state' };
  if ((m = /^vision\.attentions\.(\d+)$/.exec(stage))) return { tower: 'vision', layer: Number(m[1]), kind: 'attention' };
  if ((m = /^text\.hidden_states\.(\d+)$/.exec(stage))) return { tower: 'llm', layer: Number(m[1]), kind: 'hidden state' };
  if ((m = /^text\.attentions\.(\d+)$/.exec(stage))) return { tower: 'llm', layer: Number(m[1]), kind: 'attention' };
  if ((m = /^(image|prompt)_kv\.(\d+)\.(key|value)$/.exec(stage))) return { tower: 'llm', layer: Number(m[2]), kind: `${m[1]} ${m[3]}` };
  // `image_features`: encode-images runs store the vision tower + projector output under this name.
  if (stage === 'projector' || stage === 'image_features') return { tower: 'projector', layer: null, kind: 'image features' };
  if (stage === 'image_token_map') return { tower: 'map', layer: null, kind: 'image token → (position, image, tile, row, col)' };
  if (stage === 'prompt_token_map') return { tower: 'map', layer: null, kind: 'question token → (position, token id, word)' };
  return null;
}

function where(b: Omit<TensorMeaning, 'label' | 'order'>): string {
  if (b.tower === 'vision') return `vision layer ${b.layer}`;
  if (b.tower === 'llm') return `LLM layer ${b.layer}`;
  if (b.tower === 'projector') return 'projector';
  return 'token map';
}

export function tensorMeaning(name: string): TensorMeaning {
  let b = base(name);
  let kind = b?.kind;
  if (!b) {
    // Readout-run families: `<family>.<stage>`.
    const dot = name.indexOf('.');
    const family = dot > 0 ? name.slice(0, dot) : '';
    const inner = FAMILY_KIND[family] ? base(name.slice(dot + 1)) : null;
    if (inner) {
      b = inner;
      kind = FAMILY_KIND[family];
    }
  }
  if (!b) return { tower: 'other', layer: null, kind: name, label: name, order: TOWER_ORDER.other * 1e4 };
  const meaning = { ...b, kind: kind! };
  return { ...meaning, label: b.tower === 'map' ? kind! : `${where(b)} · ${kind}`, order: TOWER_ORDER[b.tower] * 1e4 + (b.layer ?? 0) * 10 };
}

/**
 * A 2-D slice of a tensor for a heatmap: the last two axes at the given leading indices
 * (default 0 each). Returns the slice's rows, cols and offset into the flat data.
 */
export function lastTwoAxes(shape: readonly number[], leading: readonly number[] = []): { rows: number; cols: number; offset: number } {
  if (shape.length === 0) return { rows: 1, cols: 1, offset: 0 };
  if (shape.length === 1) return { rows: 1, cols: shape[0]!, offset: 0 };
  const rows = shape.at(-2)!;
  const cols = shape.at(-1)!;
  let offset = 0;
  let stride = rows * cols;
  for (let a = shape.length - 3; a >= 0; a--) {
    const i = Math.min(Math.max(0, leading[a] ?? 0), shape[a]! - 1);
    offset += i * stride;
    stride *= shape[a]!;
  }
  return { rows, cols, offset };
}
