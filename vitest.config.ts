import { defineConfig } from 'vitest/config';

// Three suites with one runner: unit (pure, fast), integration (real SQLite, ORT, processes),
// e2e (the served workbench in Debian's Chromium through playwright-core).
export default defineConfig({
  test: {
    // Both cores of a 2-core CI machine (vitest's default leaves one idle): integration files spend much
    // of their time in child processes and disk waits, so two at a time finish sooner. e2e stays serial.
    maxWorkers: 2,
    projects: [
      { test: { name: 'unit', include: ['tests/unit/**/*.test.ts'], environment: 'node' } },
      { test: { name: 'integration', include: ['tests/integration/**/*.test.ts'], environment: 'node', testTimeout: 120_000, hookTimeout: 120_000 } },
      { test: { name: 'e2e', include: ['tests/e2e/**/*.test.ts'], environment: 'node', testTimeout: 180_000, hookTimeout: 180_000, fileParallelism: false } },
    ],
  },
});
