import { defineConfig } from 'vitest/config'

// Tests that assert elapsed time or throughput: a busy machine makes them fail without a bug, so `npm test` leaves
// them to `npm run test:slow`, which .ci/run runs on its own after the suite.
const SLOW = ['test/performance/**/*.test.ts', 'test/soak/**/*.test.ts', '**/*.slow.test.ts']

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // End-to-end tests open real ports and spawn processes; two workers match the two cores of the CI machine.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['gateway/**/*.test.ts', 'filters/**/*.test.ts', 'simulators/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...SLOW],
        },
      },
      { extends: true, test: { name: 'slow', include: SLOW, exclude: ['**/node_modules/**'] } },
    ],
    benchmark: {
      include: ['filters/**/*.bench.ts', 'gateway/**/*.bench.ts'],
    },
  },
})
