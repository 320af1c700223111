/**
 * Firehose ingest in the page: the recorded `long_run` text frames (a fresh
 * prompt id per cycle, as the mock's firehose does) fed to the wasm core's
 * `handleText`, against a plain `JSON.parse` loop over the same strings.
 */
import { loadCore, WasmSession } from 'comfywire';

declare const __BENCH_FRAMES__: { promptId: string; frames: string[] };

/** Result of one run. */
interface BenchResult {
  frames: number;
  jsonParsePerSec: number;
  wasmPerSec: number;
  wasmEvents: number;
}

function buildFrames(total: number): string[] {
  const { promptId, frames } = __BENCH_FRAMES__;
  const out: string[] = [];
  for (let cycle = 0; out.length < total; cycle++) {
    const id = `${cycle.toString(16).padStart(8, '0')}${promptId.slice(8)}`;
    for (const f of frames) {
      if (out.length >= total) break;
      out.push(f.split(promptId).join(id));
    }
  }
  return out;
}

async function runBench(total: number): Promise<BenchResult> {
  await loadCore();
  const frames = buildFrames(total);
  let sink = 0;
  let t0 = performance.now();
  for (const f of frames) {
    const m = JSON.parse(f) as { type: string };
    sink += m.type.length;
  }
  const jsonMs = performance.now() - t0;
  const s = new WasmSession({ clientId: 'bench' }, performance.now());
  s.connect(performance.now());
  s.drainCommands();
  s.handleConnected(performance.now());
  s.drainCommands();
  let events = 0;
  t0 = performance.now();
  for (let i = 0; i < frames.length; i++) {
    s.handleText(frames[i]!, performance.now());
    if ((i & 255) === 255) events += (s.drainEvents() as unknown[]).length;
  }
  events += (s.drainEvents() as unknown[]).length;
  const wasmMs = performance.now() - t0;
  s.free();
  if (sink === 0) throw new Error('nothing parsed');
  return {
    frames: frames.length,
    jsonParsePerSec: Math.round((frames.length / jsonMs) * 1000),
    wasmPerSec: Math.round((frames.length / wasmMs) * 1000),
    wasmEvents: events,
  };
}

(window as unknown as { runBench: typeof runBench }).runBench = runBench;
const out = document.getElementById('out');
if (out) out.textContent = 'ready';
