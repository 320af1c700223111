/**
 * Test support: a real `comfywire-mock` started on a free loopback port,
 * its fault and inspection API, workflows taken from the recorded traces,
 * and a bounded condition wait (no fixed sleeps).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Strings, not URL objects: jsdom replaces the global URL class.
const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The core's bytes, for runtimes whose module URLs are not files (jsdom tests). */
export function wasmBytes(): Uint8Array {
  return readFileSync(join(repo, 'js', 'src', 'core', 'pkg', 'comfywire_wasm_bg.wasm'));
}

/** The mock binary: `$COMFYWIRE_MOCK`, else the debug build in the cargo target dir. */
export function mockBinary(): string {
  const explicit = process.env['COMFYWIRE_MOCK'];
  if (explicit) return explicit;
  const target = process.env['CARGO_TARGET_DIR'] ?? '/var/tmp/comfywire-target';
  const path = `${target}/debug/comfywire-mock`;
  if (!existsSync(path)) throw new Error(`no mock at ${path}: run cargo build -p comfywire-mock (or set COMFYWIRE_MOCK)`);
  return path;
}

/** A running mock. */
export class Mock {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  private readonly child: ChildProcess;

  private constructor(url: string, child: ChildProcess) {
    this.url = url;
    this.child = child;
  }

  /** Starts a mock on a free port and reads the URL it prints. */
  static async start(speed = 1): Promise<Mock> {
    const child = spawn(mockBinary(), ['--port', '0', '--speed', String(speed)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the mock printed no URL within 10 s')), 10_000);
      child.once('exit', (code) => reject(new Error(`the mock exited (${code})`)));
      lines.once('line', (line) => {
        clearTimeout(timer);
        resolve(line.trim().replace(/\/$/, ''));
      });
    });
    return new Mock(url, child);
  }

  /** Stops it and waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGINT');
    await exited;
  }

  /** `POST /mock/fault`. */
  async fault(fault: Record<string, unknown>): Promise<void> {
    const r = await fetch(`${this.url}/mock/fault`, { method: 'POST', body: JSON.stringify(fault) });
    if (!r.ok) throw new Error(`fault ${JSON.stringify(fault)}: HTTP ${r.status} ${await r.text()}`);
  }

  /** `POST /mock/speed`. */
  async speed(speed: number): Promise<void> {
    const r = await fetch(`${this.url}/mock/speed`, { method: 'POST', body: JSON.stringify({ speed }) });
    if (!r.ok) throw new Error(`speed: HTTP ${r.status}`);
  }

  /** `POST /mock/restart`: forget queue and history. */
  async restart(): Promise<void> {
    const r = await fetch(`${this.url}/mock/restart`, { method: 'POST' });
    if (!r.ok) throw new Error(`restart: HTTP ${r.status}`);
  }

  /** `POST /mock/firehose`: `frames` frames of `scenario` to one client's socket. */
  async firehose(clientId: string, frames: number, scenario = 'long_run'): Promise<number> {
    const r = await fetch(`${this.url}/mock/firehose`, {
      method: 'POST',
      body: JSON.stringify({ client_id: clientId, frames, scenario }),
    });
    const body = (await r.json()) as { frames_sent: number };
    return body.frames_sent;
  }

  /** `GET /mock/stats`. */
  async stats(): Promise<Record<string, number>> {
    return (await (await fetch(`${this.url}/mock/stats`)).json()) as Record<string, number>;
  }

  /** The mock's own `/history/{id}` entry, or undefined. */
  async history(promptId: string): Promise<{ outputs: Record<string, unknown>; status: { status_str?: string } } | undefined> {
    const body = (await (await fetch(`${this.url}/history/${promptId}`)).json()) as Record<string, never>;
    return body[promptId];
  }

  /** The mock's `/queue`. */
  async queue(): Promise<{ queue_running: unknown[][]; queue_pending: unknown[][] }> {
    return (await (await fetch(`${this.url}/queue`)).json()) as { queue_running: unknown[][]; queue_pending: unknown[][] };
  }
}

/** The first accepted graph of a recorded scenario (`tests/data/traces/<name>.jsonl`). */
export function workflow(scenario: string): Record<string, unknown> {
  const lines = readFileSync(`${repo}/tests/data/traces/${scenario}.jsonl`, 'utf8').split('\n');
  for (const line of lines.slice(1)) {
    if (!line.trim()) continue;
    const event = JSON.parse(line) as { kind?: string; method?: string; path?: string; status?: number; request?: { prompt?: Record<string, unknown> } };
    if (event.kind === 'http' && event.method === 'POST' && event.path === '/prompt' && event.status === 200 && event.request?.prompt) {
      return event.request.prompt;
    }
  }
  throw new Error(`no accepted prompt in ${scenario}`);
}

/** Waits until `check` returns a truthy value, polling every 10 ms, at most `timeoutMs`. */
export async function until<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
