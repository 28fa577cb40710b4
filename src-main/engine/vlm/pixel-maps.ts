/**
 * Which pixel → token map a model's processor implies (src-shared/vision/pixel-map.ts), per family:
 *  - LLaVA-1.5 / LLaVA-OneVision base view: CLIP/SigLIP processors — resize (shortest edge, or
 *    exact height × width) then centre crop; points outside the crop are cropped away.
 *  - Qwen2-VL / 2.5-VL: smart_resize of the whole image to a multiple of the merged patch, no
 *    crop — cells are proportional to the original image.
 *  - Idefics3 / SmolVLM global view: the whole image resized — proportional.
 *  - PaliGemma: SiglipImageProcessor resizes the whole image to size.height × size.width, no crop —
 *    proportional (wholeImageMap).
 */
import { type Grid, type PixelMap, type Size, type ViewConfig, clipViewMap, wholeImageMap } from '../../../src-shared/vision/pixel-map.ts';
import type { ModelFolder } from '../model-folder.ts';

export function viewMapper(folder: Pick<ModelFolder, 'family' | 'preprocessor'>): (image: Size, grid: Grid) => PixelMap {
  if (folder.family === 'llava' || folder.family === 'llava-onevision') return (image, grid) => clipViewMap(folder.preprocessor as ViewConfig, image, grid);
  return wholeImageMap;
}
