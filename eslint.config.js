// Lint = code quality + the layering rules (who may import whom), enforced like VS Code's.
import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];
const restrict = (paths, patterns) => ['error', { paths: paths.map((name) => ({ name, message: 'not allowed in this layer (see docs/architecture.md)' })), patterns }];

export default tseslint.config(
  { ignores: ['node_modules/', 'out/', 'dist/', '.device/', 'build/', 'resources/', 'tests/fixtures/', '.cache/', 'tools/**/*.py'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs.recommended,
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
      // TypeScript already checks identifiers (and knows each layer's globals from its tsconfig).
      'no-undef': 'off',
    },
  },
  // src-shared: pure TS — no Node, no Electron, no DOM, no other layer.
  {
    files: ['src-shared/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(['electron', ...nodeBuiltins], [{ group: ['**/src-main/**', '**/src-renderer/**', 'svelte', 'svelte/*', 'three'], message: 'src-shared may not depend on other layers' }]),
      'no-restricted-globals': ['error', 'window', 'document', 'process', 'Buffer', 'require', '__dirname'],
    },
  },
  // src-main: may use Node and src-shared, never the renderer.
  {
    files: ['src-main/**/*.ts'],
    ignores: ['src-main/preload/**'],
    rules: { 'no-restricted-imports': restrict([], [{ group: ['**/src-renderer/**', 'svelte', 'svelte/*', 'three'], message: 'src-main never imports the renderer' }]) },
  },
  // Experiments and contract handlers see the engine only through engine-context.ts (no import circle
  // engine → handlers → experiments → engine).
  {
    files: ['src-main/experiments/**/*.ts', 'src-main/engine/handlers.ts', 'src-main/engine/create-run.ts', 'src-main/datasets/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict([], [
        { group: ['**/src-renderer/**', 'svelte', 'svelte/*', 'three'], message: 'src-main never imports the renderer' },
        { group: ['**/engine/engine.ts', '**/engine/handlers.ts', '**/server/**', '**/electron/**', '**/cli/**'], message: 'experiments and handlers use EngineContext (engine/engine-context.ts), never the engine or its hosts' },
      ]),
    },
  },
  // preload: electron's contextBridge/ipcRenderer and the bridge contract only.
  {
    files: ['src-main/preload/**/*.ts'],
    rules: {
      'no-restricted-imports': restrict(nodeBuiltins, [{ regex: '^\\.\\./(?!\\.\\./src-shared/bridge\\.ts$)', message: 'the preload may import only electron and src-shared/bridge.ts' }]),
    },
  },
  // src-renderer: DOM + Svelte + src-shared; reaches the engine only through the contract.
  {
    files: ['src-renderer/**/*.ts', 'src-renderer/**/*.svelte'],
    rules: {
      'no-restricted-imports': restrict(['electron', 'better-sqlite3', 'onnxruntime-node', 'ws', ...nodeBuiltins], [{ group: ['**/src-main/**'], message: 'the renderer talks to the engine only through src-shared/contract' }]),
    },
  },
);
