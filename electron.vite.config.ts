import { defineConfig } from 'electron-vite';
import { fileURLToPath } from 'node:url';
import { rendererConfig } from './vite.renderer.config.ts';

const src = (p: string) => fileURLToPath(new URL(p, import.meta.url));

// Three builds: main (+ the engine utility process and its compute worker), the sandboxed
// preload as a single CJS file (sandboxed preloads cannot be ESM), and the Svelte renderer.
export default defineConfig({
  main: {
    build: {
      rollupOptions: {
        input: {
          index: src('./src-main/electron/main.ts'),
          'engine-host': src('./src-main/electron/engine-host.ts'),
          'compute-worker': src('./src-main/compute/worker.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      rollupOptions: { input: { index: src('./src-main/preload/index.ts') }, output: { format: 'cjs', entryFileNames: '[name].cjs' } },
    },
  },
  renderer: { ...rendererConfig, build: { ...rendererConfig.build, rollupOptions: { input: src('./src-renderer/index.html') } } },
});
