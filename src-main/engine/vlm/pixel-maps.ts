/**
 * Which pixel → token map a model's processor implies (src-shared/vision/pixel-map.ts), per family:
 *  - LLaVA-1.5 (and single-crop llava_qwen2): CLIP/SigLIP processors — resize (shortest edge, or
 *    exact height × width) then centre crop; points outside the crop are cropped away.
 *  - LLaVA-NeXT / LLaVA-OneVision (anyres): the base view, the whole image resized to a square — proportional.
 *  - Qwen2-VL / 2.5-VL: smart_resize of the whole image to a multiple of the merged patch, no
 *    crop — cells are proportional to the original image.
 *  - Idefics3 / SmolVLM global view: the whole image resized — proportional.
 *  - PaliGemma: SiglipImageProcessor resizes the whole image to size.height × size.width, no crop —
 *    proportional (wholeImageMap).
 */
import { type Grid, type PixelMap, type Size, type ViewConfig, clipViewMap, wholeImageMap } from '../../../src-shared/vision/pixel-map.ts';
import type { ModelFolder } from '../model-folder.ts';
import { isAnyres } from './anyres-images.ts';

export function viewMapper(folder: Pick<ModelFolder, 'family' | 'preprocessor' | 'config'>): (image: Size, grid: Grid) => PixelMap {
  // Anyres LLaVA-NeXT / LLaVA-OneVision: the base view (the grid the probes read) is the whole image resized to a
  // square (NeXT size.shortest_edge², OneVision size.height × size.width), no crop — proportional.
  if (isAnyres(folder)) return wholeImageMap;
  if (folder.family === 'llava' || folder.family === 'llava-onevision') return (image, grid) => clipViewMap(folder.preprocessor as ViewConfig, image, grid);
  return wholeImageMap;
}
