/**
 * The vision encoder's input names across exporters: one rule, used by the forward pass
 * (pipeline.ts) and the encode-images job. Qwen2-VL calls the grid input `grid_thw`,
 * Qwen2.5-VL `image_grid_thw` (transformers.js 4.3.1 feeds each its own name).
 */
export function visionInputName(inputNames: readonly string[], name: string): string | null {
  if (inputNames.includes(name)) return name;
  if (name === 'image_grid_thw' && inputNames.includes('grid_thw')) return 'grid_thw';
  return null;
}
