/**
 * The closed sets of object attributes and their appearance.
 *
 * Colours are far apart in RGB and none is close to the background gradient or to the marker
 * colours' black/white rings, so "what colour" has one right answer per pixel. Each colour also has
 * a `dark` shade used by the patterned styles: a pattern only ever mixes an object's own two shades,
 * so the colour question stays answerable for every style.
 */

export const SHAPES = ['circle', 'square', 'triangle', 'diamond'] as const;
export type Shape = (typeof SHAPES)[number];

export const COLOURS = ['red', 'orange', 'yellow', 'green', 'blue', 'purple', 'white'] as const;
export type Colour = (typeof COLOURS)[number];

export const STYLES = ['solid', 'striped', 'dotted', 'checkered'] as const;
export type Style = (typeof STYLES)[number];

export type RGB = readonly [number, number, number];

export const COLOUR_RGB: Record<Colour, RGB> = {
  red: [220, 45, 45],
  orange: [245, 140, 25],
  yellow: [240, 220, 50],
  green: [55, 175, 70],
  blue: [50, 95, 225],
  purple: [145, 65, 195],
  white: [240, 240, 240],
};

/** The pattern shade: 55 % of the base colour (white → mid grey, still far from the background). */
const shade = ([r, g, b]: RGB): RGB => [Math.round(r * 0.55), Math.round(g * 0.55), Math.round(b * 0.55)];
export const COLOUR_DARK: Record<Colour, RGB> = {
  red: shade(COLOUR_RGB.red),
  orange: shade(COLOUR_RGB.orange),
  yellow: shade(COLOUR_RGB.yellow),
  green: shade(COLOUR_RGB.green),
  blue: shade(COLOUR_RGB.blue),
  purple: shade(COLOUR_RGB.purple),
  white: shade(COLOUR_RGB.white),
};

/** Plural forms used by counting prompts. */
export const SHAPE_PLURAL: Record<Shape, string> = {
  circle: 'circles',
  square: 'squares',
  triangle: 'triangles',
  diamond: 'diamonds',
};
