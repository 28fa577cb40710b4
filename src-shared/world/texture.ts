/**
 * Surface patterns ("styles"). Each is a periodic two-tone pattern in world units anchored at the
 * object's centre, so the texture moves with its object across frames and scales with the view
 * (a zoomed view sees coarser stripes, like a real camera). The four families differ in
 * orientation and duty cycle — horizontal bands, sparse dots, a half-coverage checkerboard —
 * which is exactly the kind of second-order statistic a Gram matrix separates.
 */
import type { Style } from './attributes.ts';

// Positive offset before flooring so negative local coordinates tile the same way.
const OFF = 1024;

/** True where the pattern shows the dark shade at local world offset (lx, ly). */
export function darkAt(style: Style, lx: number, ly: number): boolean {
  const x = lx + OFF;
  const y = ly + OFF;
  switch (style) {
    case 'solid':
      return false;
    case 'striped':
      // Horizontal bands, period 4 px, half dark.
      return Math.floor(y / 2) % 2 === 0;
    case 'dotted':
      // 2×2 dots on a 5 px grid: sparse (16 %) isotropic blobs.
      return x % 5 < 2 && y % 5 < 2;
    case 'checkered':
      // 3 px cells, half dark, both axes.
      return (Math.floor(x / 3) + Math.floor(y / 3)) % 2 === 0;
  }
}
