import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The renderer alone, for `loupe serve` and browser tests (Electron builds it through electron.vite.config.ts). */
export const rendererConfig = {
  root: fileURLToPath(new URL('./src-renderer', import.meta.url)),
  base: './',
  plugins: [svelte()],
  // three.js is its own lazily loaded chunk (~600 kB, only for the 3D view): not worth a warning.
  build: { outDir: fileURLToPath(new URL('./out/renderer', import.meta.url)), emptyOutDir: true, chunkSizeWarningLimit: 1024 },
};

export default defineConfig(rendererConfig);
