/**
 * What AttentionFlowScene.benchOrbit measures. A plain type in its own file (no three.js, no DOM)
 * so bench/flow-fps.ts, which runs under Node and reads it back from the page, shares it.
 */
import type { LodMode } from './flow-lod.ts';

export interface BenchResult {
  mode: LodMode;
  frames: number;
  seconds: number;
  fps: number;
  /** Mean ms of a moving frame / a full-detail frame forced to finish by a 1-pixel readback. */
  syncMovingMs: number;
  syncStillMs: number;
  /** Mean ms of JS per moving frame (renderer.render only; the GL work runs elsewhere). */
  jsMs: number;
  edges: number;
  tokens: number;
  /** Mean edges and token points drawn per moving frame. */
  drawnEdges: number;
  drawnTokens: number;
  /** Pixel ratio of the moving frames. */
  pixelRatio: number;
  /** From the last camera move to the full-detail frame (idle wait included). */
  stillAfterMs: number;
  /** Edges and tokens the frame after the camera stopped drew (all of them, or LOD failed to restore). */
  stillEdges: number;
  stillTokens: number;
}
