import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

// The ComfyUI (or comfywire-mock) the dev and preview servers proxy to, so the
// app talks to its own origin by default.
const target = process.env['COMFY_URL'] ?? 'http://127.0.0.1:8188';
const routes = ['/prompt', '/queue', '/history', '/view', '/upload', '/interrupt', '/system_stats', '/object_info', '/mock'];
const proxy: Record<string, { target: string; ws?: boolean; changeOrigin: boolean }> = {
  '/ws': { target, ws: true, changeOrigin: true },
};
for (const route of routes) proxy[route] = { target, changeOrigin: true };

/** The graph recorded in the project's `success_single` trace, the app's default workflow. */
function recordedWorkflow(): unknown {
  const trace = readFileSync(here('../../../tests/data/traces/success_single.jsonl'), 'utf8');
  for (const line of trace.split('\n').slice(1)) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { kind?: string; method?: string; path?: string; status?: number; request?: { prompt?: unknown } };
    if (e.kind === 'http' && e.method === 'POST' && e.path === '/prompt' && e.status === 200 && e.request?.prompt) return e.request.prompt;
  }
  throw new Error('no recorded workflow in success_single.jsonl');
}

/** The received text frames of the `long_run` trace and its prompt id, for the ingest benchmark page. */
function benchFrames(): { promptId: string; frames: string[] } {
  const lines = readFileSync(here('../../../tests/data/traces/long_run.jsonl'), 'utf8').split('\n');
  const meta = JSON.parse(lines[0] ?? '{}') as { meta?: { prompt_ids?: string[] } };
  const promptId = meta.meta?.prompt_ids?.[0] ?? '';
  const frames: string[] = [];
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const e = JSON.parse(line) as { kind?: string; dir?: string; data?: string };
    if (e.kind === 'text' && e.dir === 'recv' && typeof e.data === 'string') frames.push(e.data);
  }
  return { promptId, frames };
}

export default defineConfig({
  define: {
    __DEFAULT_WORKFLOW__: JSON.stringify(recordedWorkflow()),
    __BENCH_FRAMES__: JSON.stringify(benchFrames()),
  },
  root: here('.'),
  resolve: {
    alias: [
      { find: /^comfywire\/react$/, replacement: here('../../src/react/index.ts') },
      { find: /^comfywire$/, replacement: here('../../src/index.ts') },
    ],
  },
  server: { proxy },
  preview: { proxy },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    rolldownOptions: { input: { main: here('index.html'), bench: here('bench.html') } },
  },
});
