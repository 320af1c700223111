import { defineConfig } from 'vitest/config';

// End to end in Chromium (playwright-core + Debian's chromium) against the
// example app served by `vite preview`, which proxies to a comfywire-mock.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
