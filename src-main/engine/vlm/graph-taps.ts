/**
 * Built-in tap sets through graph surgery: the catalogue finds each layer's residual stream
 * and attention probabilities in the vision encoder and the decoder; the rewritten copies
 * (cached next to the originals) expose them as outputs.
 */
import { LoupeError } from '../../../src-shared/contract/errors.ts';
import type { TapSelection } from '../../../src-shared/jobs/specs.ts';
import type { VlmSessionFiles } from '../../compute/vlm/types.ts';
import { buildCatalogue } from '../graph/catalogue.ts';
import { readModel } from '../graph/model-proto.ts';
import { rewrittenModelPath } from '../graph/ablation.ts';
import { fp16TapName } from '../graph/taps.ts';
import type { ModelFolder } from '../model-folder.ts';
import type { NamedTap } from './tap-sets.ts';

async function tapsOf(path: string, prefix: 'vision' | 'text', selection: TapSelection, layers: boolean): Promise<NamedTap[]> {
  const catalogue = buildCatalogue(await readModel(path), { label: path });
  const taps: NamedTap[] = [];
  if (layers) {
    for (const [hf, tensor] of Object.entries(catalogue.hiddenStates)) taps.push({ name: `${prefix}.${hf}`, tensor });
    if (catalogue.finalNorm) taps.push({ name: `${prefix}.final_norm`, tensor: catalogue.finalNorm });
  }
  if (selection.attention) {
    const missing = catalogue.layers.filter((l) => !l.attention);
    if (missing.length) {
      // Never a silent drop: a run asked for every layer's attention.
      throw new LoupeError(
        'bad-input',
        `${path}: attention probabilities cannot be tapped in layer(s) ${missing.map((l) => l.index).join(', ')} — ${catalogue.notes.filter((n) => /exposes no attention probabilities/.test(n)).join('; ')}`,
      );
    }
    for (const l of catalogue.layers) taps.push({ name: `${prefix}.attentions.${l.index}`, tensor: l.attention!.tensor });
  }
  return taps;
}

/** Outputs converted to fp16 inside the graph (taps.ts fp16TapName), chosen once the taps are known. */
export type Fp16Choice = (taps: { vision: NamedTap[]; decoder: NamedTap[] }) => { vision: string[]; decoder: string[] };

export async function builtinTaps(
  folder: ModelFolder,
  selection: TapSelection,
  place: (file: string) => string,
  /** Also give these towers attention-bias inputs (engine/graph/ablation.ts), in the same rewritten file. */
  ablate: { vision: boolean; llm: boolean } = { vision: false, llm: false },
  fp16?: Fp16Choice,
): Promise<{ vision: NamedTap[]; decoder: NamedTap[]; fp16: Record<string, string>; files: Pick<VlmSessionFiles, 'vision' | 'decoder'> }> {
  const vision = selection.visionLayers || selection.attention ? await tapsOf(folder.files.vision_encoder, 'vision', selection, selection.visionLayers) : [];
  const decoder = selection.llmLayers || selection.attention ? await tapsOf(folder.files.decoder_model_merged, 'text', selection, selection.llmLayers) : [];
  const cast = fp16?.({ vision, decoder }) ?? { vision: [], decoder: [] };
  const fp16Names: Record<string, string> = {};
  for (const t of [...cast.vision, ...cast.decoder]) fp16Names[t] = fp16TapName(t);
  const file = async (original: string, taps: NamedTap[], casts: string[], ablation: boolean) =>
    taps.length || casts.length || ablation ? rewrittenModelPath(place(original), { taps: [...taps.map((t) => t.tensor), ...casts.map(fp16TapName)], ablation }) : original;
  return {
    vision,
    decoder,
    fp16: fp16Names,
    files: {
      vision: await file(folder.files.vision_encoder, vision, cast.vision, ablate.vision),
      decoder: await file(folder.files.decoder_model_merged, decoder, cast.decoder, ablate.llm),
    },
  };
}
