import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['gateway/**/*.test.ts', 'filters/**/*.test.ts', 'simulators/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // End-to-end tests open real ports and spawn processes; two workers match the two cores of the CI machine.
    maxWorkers: 2,
    benchmark: {
      include: ['filters/**/*.bench.ts', 'gateway/**/*.bench.ts'],
    },
  },
})
