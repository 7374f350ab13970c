import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // Vitest's default for `run` is cores - 1, a single worker on the 2-core CI machines: the
    // files then run one after another (104 s there against 72 s with both cores).
    maxWorkers: availableParallelism(),
  },
});
