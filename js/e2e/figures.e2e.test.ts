/**
 * The figures of js/README.md: gzipped size of the package (wasm + JS, as
 * a bundler ships it) and firehose ingest in Chromium (the wasm core vs. a
 * plain JSON.parse loop in the same page). Written to e2e/artifacts/figures.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { PreviewServer } from 'vite';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mock } from '../test/support.js';
import { ARTIFACTS, chromiumPath, launch, serveExample } from './browser.js';

let mock: Mock;
let served: { url: string; server: PreviewServer };

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mock = await Mock.start(1);
  served = await serveExample(mock.url);
});
afterAll(async () => {
  await served?.server.close();
  await mock?.stop();
});

/** Minified, gzipped bytes of one entry bundled alone (peer dependencies external); the best of five runs is kept for speed. */
async function bundleSize(entry: string): Promise<{ js: number; wasm: number }> {
  const out = mkdtempSync(join(tmpdir(), 'comfywire-size-'));
  try {
    await build({
      configFile: false,
      logLevel: 'silent',
      build: {
        outDir: out,
        minify: true,
        target: 'es2022',
        // App mode, not lib mode: lib mode inlines the .wasm as base64, a
        // bundler serving an app ships it as a file of its own.
        rolldownOptions: {
          input: fileURLToPath(new URL(entry, import.meta.url)),
          preserveEntrySignatures: 'strict',
          external: ['react', 'react/jsx-runtime', 'react-dom', 'zustand', 'zustand/middleware', 'ws'],
        },
        assetsInlineLimit: 0,
      },
    });
    let js = 0;
    let wasm = 0;
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.js')) js += gzipSync(readFileSync(p), { level: 9 }).length;
        else if (e.name.endsWith('.wasm')) wasm += gzipSync(readFileSync(p), { level: 9 }).length;
      }
    };
    walk(out);
    return { js, wasm };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

describe('figures', () => {
  it('measures size and ingest', async () => {
    const core = await bundleSize('../src/index.ts');
    const react = await bundleSize('../src/react/index.ts');
    const browser = await launch();
    let runs: { frames: number; jsonParsePerSec: number; wasmPerSec: number; wasmEvents: number }[] = [];
    try {
      const page = await browser.context.newPage();
      await page.goto(new URL('bench.html', served.url).href);
      await page.getByText('ready').waitFor();
      runs = [];
      for (let i = 0; i < 5; i++) {
        runs.push(await page.evaluate((n) => (window as unknown as { runBench: (n: number) => Promise<never> }).runBench(n), 100_000));
      }
    } finally {
      await browser.close();
    }
    const best = {
      jsonParsePerSec: Math.max(...runs.map((r) => r.jsonParsePerSec)),
      wasmPerSec: Math.max(...runs.map((r) => r.wasmPerSec)),
    };
    const figures = {
      gzipBytes: { wasm: core.wasm, coreJs: core.js, reactJs: react.js, total: core.wasm + react.js },
      ingest: { frames: 100_000, source: 'long_run text frames', ...best, runs },
      chromium: execFileSync(chromiumPath(), ['--version'], { encoding: 'utf8' }).trim(),
    };
    writeFileSync(`${ARTIFACTS}figures.json`, JSON.stringify(figures, null, 2));
    console.log(JSON.stringify(figures, null, 2));
    expect(core.wasm).toBeGreaterThan(0);
    expect(figures.gzipBytes.total).toBeLessThan(200 * 1024);
    expect(runs.every((r) => r.frames === 100_000 && r.wasmEvents > 0)).toBe(true);
  });
});
