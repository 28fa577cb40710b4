/**
 * Built-in tap sets → concrete tensor names in a model's graphs, and the session files
 * that expose them. Outputs the exports already have (`image_features`, `present.*`) need no
 * rewrite; layer hidden states and attention probabilities come from rewritten copies of the
 * graphs (engine/graph), cached in Loupe's data folder (vlm/overlay.ts), never in the model folder.
 */
import { createHash } from 'node:crypto';
import { type AblationSpec, ablatedParts } from '../../../src-shared/ablation/spec.ts';
import type { TapSelection } from '../../../src-shared/jobs/specs.ts';
import type { VlmSessionFiles } from '../../compute/vlm/types.ts';
import type { ModelFolder } from '../model-folder.ts';
import type { Fp16Choice } from './graph-taps.ts';

export interface NamedTap {
  /** Stable name the capture is stored under (e.g. `vision.hidden_states.2`). */
  name: string;
  /** The graph tensor it reads. */
  tensor: string;
}

export interface ResolvedTaps {
  key: string;
  files: VlmSessionFiles;
  vision: NamedTap[];
  decoder: NamedTap[];
  /** Source tensor → the graph output holding it converted to fp16 by the runtime (captures stored as fp16). */
  fp16: Record<string, string>;
}

/** Where rewritten graphs are written: a twin of the model's onnx/ folder under `cacheRoot`, keyed by the model's content hash. */
export interface RewritePlace {
  cacheRoot: string;
  modelHash: string;
}

/**
 * `ablation`: the towers it edits also get attention-bias inputs (engine/graph/ablation.ts),
 * in the same rewritten file as the taps; specs Loupe cannot apply are refused here.
 */
export async function resolveTaps(folder: ModelFolder, selection: TapSelection, place: RewritePlace, ablation?: AblationSpec, fp16?: Fp16Choice): Promise<ResolvedTaps> {
  const files: VlmSessionFiles = { vision: folder.files.vision_encoder, embed: folder.files.embed_tokens, decoder: folder.files.decoder_model_merged };
  const vision: NamedTap[] = [];
  const decoder: NamedTap[] = [];
  let fp16Names: Record<string, string> = {};
  let ablate = { vision: false, llm: false };
  if (ablation) {
    const { checkAblation } = await import('./ablation.ts');
    checkAblation(folder, ablation);
    const parts = ablatedParts(ablation);
    ablate = { vision: parts.has('vision'), llm: parts.has('llm') };
  }
  if (selection.visionLayers || selection.llmLayers || selection.attention || ablate.vision || ablate.llm || fp16) {
    const graph = await import('./graph-taps.ts');
    const { rewritableOnnxDir } = await import('./overlay.ts');
    const built = await graph.builtinTaps(folder, selection, rewritableOnnxDir(place), ablate, fp16);
    vision.push(...built.vision);
    decoder.push(...built.decoder);
    fp16Names = built.fp16;
    files.vision = built.files.vision;
    files.decoder = built.files.decoder;
  }
  const key = createHash('sha256').update(JSON.stringify([files, vision, decoder, fp16Names])).digest('hex').slice(0, 12);
  return { key, files, vision, decoder, fp16: fp16Names };
}
