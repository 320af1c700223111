/**
 * ComfyClient and its driver against a real comfywire-mock on loopback:
 * runs, the job API, reconnect after a drop, the polling fallback,
 * reconciliation after a gap, liveness, deadlines and cleanup. Truth comes
 * from the mock's own `/history` and `/queue`.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ComfyClient, ComfyError, type ComfyClientOptions, type ComfyEvent, type SocketConstructor } from '../src/index.js';
import { Mock, until, workflow } from './support.js';

let mock: Mock;
const clients: ComfyClient[] = [];

beforeAll(async () => {
  mock = await Mock.start(4);
});
afterAll(async () => {
  await mock.stop();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await mock.fault({ fault: 'refuse_connects', count: 0 });
  await mock.speed(4);
});

async function client(options: Partial<ComfyClientOptions> = {}): Promise<ComfyClient> {
  const c = await ComfyClient.create({
    url: mock.url,
    WebSocket: WebSocket as unknown as SocketConstructor,
    ...options,
  });
  clients.push(c);
  await c.waitConnected();
  return c;
}

/** Every event of one prompt, collected from the moment of the call. */
function record(c: ComfyClient): ComfyEvent[] {
  const events: ComfyEvent[] = [];
  c.onAny((e) => events.push(e));
  return events;
}

function finishedOf(events: ComfyEvent[], promptId: string): number {
  return events.filter((e) => e.type === 'finished' && e.record.promptId === promptId).length;
}

/** The mock's own history entry, once written (it may trail the terminal frame). */
function served(promptId: string): Promise<NonNullable<Awaited<ReturnType<Mock['history']>>>> {
  return until(() => mock.history(promptId), `the server's history of ${promptId}`);
}

const fast = { backoff: { initialMs: 50, maxMs: 200 } };

describe('runs', () => {
  it('runs a workflow with live progress and the outputs the server recorded', async () => {
    const c = await client();
    const events = record(c);
    const result = await c.run(workflow('success_single'), { extraData: { mock_scenario: 'success_single' } });
    const progress = events.filter((e) => e.type === 'progress' && e.promptId === result.promptId);
    expect(progress.length).toBeGreaterThan(0);
    expect(events.some((e) => e.type === 'preview')).toBe(true);
    expect(finishedOf(events, result.promptId)).toBe(1);
    const server = await served(result.promptId);
    expect(server?.status.status_str).toBe('success');
    expect(result.outputs).toEqual(server?.outputs);
    expect(result.files.length).toBeGreaterThan(0);
    const image = new Uint8Array(await (await c.download(result.files[0]!)).arrayBuffer());
    expect([...image.slice(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(c.viewUrl(result.files[0]!)).toContain('/view?filename=');
    expect(c.history().at(-1)?.promptId).toBe(result.promptId);
  });

  it('rejects a refused workflow with a validation error and queues nothing', async () => {
    const c = await client();
    await mock.fault({ fault: 'validation_error_next_prompt' });
    const error = await c.submit(workflow('success_single')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ComfyError);
    expect((error as ComfyError).code).toBe('validation');
    expect((error as ComfyError).status).toBe(400);
    const q = await mock.queue();
    expect(q.queue_pending.length + q.queue_running.length).toBe(0);
  });

  it('rejects a failing prompt with execution_failed and its record', async () => {
    const c = await client();
    const error = (await c
      .run(workflow('execution_error'), { extraData: { mock_scenario: 'execution_error' } })
      .catch((e: unknown) => e)) as ComfyError;
    expect(error.code).toBe('execution_failed');
    expect(error.record?.outcome?.kind).toBe('failed');
    const server = await served(error.record!.promptId);
    expect(server?.status.status_str).toBe('error');
  });

  it('keeps the last 100 finished executions', async () => {
    await mock.speed(0);
    const c = await client();
    const ids: string[] = [];
    for (let i = 0; i < 103; i++) {
      const r = await c.run(workflow('partial_validation'), { extraData: { mock_scenario: 'partial_validation' } });
      ids.push(r.promptId);
    }
    const ring = c.history().map((r) => r.promptId);
    expect(ring).toEqual(ids.slice(3));
  });
});

describe('the job API', () => {
  it('lists, deletes, clears and interrupts the queue', async () => {
    await mock.speed(0.5);
    const c = await client();
    const flow = workflow('long_run');
    const subs = [];
    for (let i = 0; i < 4; i++) subs.push(await c.submit(flow, { extraData: { mock_scenario: 'long_run' } }));
    const [first, second, third, fourth] = subs.map((s) => s.promptId) as [string, string, string, string];
    await until(async () => (await c.queue()).running[0]?.promptId === first, 'the first prompt running');
    const q = await c.queue();
    expect(q.pending.map((i) => i.promptId)).toEqual([second, third, fourth]);
    expect(q.running[0]?.clientId).toBe(c.clientId);
    await c.deleteFromQueue([second]);
    expect((await mock.queue()).queue_pending.map((i) => i[1])).toEqual([third, fourth]);
    await c.clearQueue();
    expect((await mock.queue()).queue_pending).toEqual([]);
    const waiting = c.wait(first).catch((e: unknown) => e);
    await c.interrupt();
    const error = (await waiting) as ComfyError;
    expect(error.code).toBe('interrupted');
    expect(error.record?.phase).toBe('interrupted');
  });

  it('uploads a file and reads it back', async () => {
    const c = await client();
    const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]);
    const ref = await c.upload(new Blob([bytes]), 'mask.png', { overwrite: true });
    expect(ref).toEqual({ filename: 'mask.png', subfolder: '', type: 'input' });
    const back = new Uint8Array(await (await c.download(ref)).arrayBuffer());
    expect([...back]).toEqual([...bytes]);
  });

  it('enforces the queue deadline while a prompt waits', async () => {
    await mock.speed(0.5);
    const c = await client();
    await c.submit(workflow('long_run'), { extraData: { mock_scenario: 'long_run' } });
    const second = await c.submit(workflow('long_run'), { extraData: { mock_scenario: 'long_run' } });
    const error = (await c.wait(second.promptId, { queueMs: 100 }).catch((e: unknown) => e)) as ComfyError;
    expect(error.code).toBe('timeout');
    expect(error.deadline).toBe('queue');
    await c.clearQueue();
    await c.interrupt();
  });

  it('refuses bad options and bad URLs with typed errors', async () => {
    const bad = await ComfyClient.create({
      url: mock.url,
      WebSocket: WebSocket as unknown as SocketConstructor,
      session: { pingIntervalMs: -5 },
    }).catch((e: unknown) => e);
    expect((bad as ComfyError).code).toBe('invalid_argument');
    const url = await ComfyClient.create({ url: 'ftp://x', WebSocket: WebSocket as unknown as SocketConstructor }).catch(
      (e: unknown) => e,
    );
    expect((url as ComfyError).code).toBe('invalid_argument');
  });

  it('closes cleanly: no listeners left, pending waits rejected, no reconnect', async () => {
    await mock.speed(0.5);
    const c = await client();
    c.on('progress', () => undefined);
    const sub = await c.submit(workflow('long_run'), { extraData: { mock_scenario: 'long_run' } });
    const waiting = c.wait(sub.promptId).catch((e: unknown) => e);
    const before = await mock.stats();
    c.close();
    expect(((await waiting) as ComfyError).code).toBe('closed');
    expect(c.stats().listeners).toBe(0);
    await expect(c.submit(workflow('long_run'))).rejects.toMatchObject({ code: 'closed' });
    await until(async () => (await mock.stats())['open_sockets'] === before['open_sockets']! - 1, 'the socket closed');
    expect((await mock.stats())['connections_accepted']).toBe(before['connections_accepted']);
    await mock.fault({ fault: 'restart' });
  });
});

describe('faults', () => {
  it('reconnects after the mock drops the socket mid-run; the prompt ends once with its outputs', async () => {
    await mock.speed(2);
    const c = await client({ session: fast });
    const events = record(c);
    const states: string[] = [];
    c.onStatus((s) => states.push(s.state));
    const sub = await c.submit(workflow('reconnect_midrun'), { extraData: { mock_scenario: 'reconnect_midrun' } });
    await until(() => events.some((e) => e.type === 'progress' && e.promptId === sub.promptId), 'progress');
    await mock.fault({ fault: 'drop_sockets_now' });
    const result = await c.wait(sub.promptId, { totalMs: 20_000 });
    expect(states).toContain('reconnecting');
    expect(c.status.state).toBe('connected');
    expect(c.stats().reconnects).toBeGreaterThanOrEqual(1);
    expect(finishedOf(events, sub.promptId)).toBe(1);
    expect(result.outputs).toEqual((await served(sub.promptId))?.outputs);
  });

  it('falls back to polling when connects keep failing and still ends the prompt once', async () => {
    const c = await client({ session: { ...fast, pollingAfterFailures: 2, pollIntervalMs: 100 } });
    const events = record(c);
    await mock.fault({ fault: 'refuse_connects', count: 1_000_000 });
    await mock.fault({ fault: 'drop_sockets_now' });
    await c.waitFor((s) => s.state === 'polling');
    const accepted = (await mock.stats())['connections_accepted'];
    const sub = await c.submit(workflow('success_single'), { extraData: { mock_scenario: 'success_single' } });
    const result = await c.wait(sub.promptId, { totalMs: 20_000 });
    // It ran start to end with no socket open: only polling saw it.
    expect((await mock.stats())['connections_accepted']).toBe(accepted);
    expect(c.status.state).not.toBe('connected');
    expect(finishedOf(events, sub.promptId)).toBe(1);
    expect(result.record.hadGap).toBe(true);
    expect(result.outputs).toEqual((await served(sub.promptId))?.outputs);
    await mock.fault({ fault: 'refuse_connects', count: 0 });
    await c.waitConnected();
  });

  it('reconciles a prompt that finished while the socket was down', async () => {
    await mock.speed(2);
    const c = await client({ session: { ...fast, pollingAfterFailures: 1000 } });
    const events = record(c);
    const sub = await c.submit(workflow('success_single'), { extraData: { mock_scenario: 'success_single' } });
    await until(() => events.some((e) => e.type === 'progress' && e.promptId === sub.promptId), 'progress');
    await mock.fault({ fault: 'refuse_connects', count: 1_000_000 });
    await mock.fault({ fault: 'drop_sockets_now' });
    // The prompt ends on the server while nobody listens.
    await until(() => mock.history(sub.promptId), 'the server finishing the prompt');
    expect(c.execution(sub.promptId)?.phase).toBe('running');
    await mock.fault({ fault: 'refuse_connects', count: 0 });
    const result = await c.wait(sub.promptId, { totalMs: 20_000 });
    expect(finishedOf(events, sub.promptId)).toBe(1);
    expect(result.record.hadGap).toBe(true);
    expect(events.some((e) => e.type === 'output' && e.promptId === sub.promptId && e.recovered)).toBe(true);
    expect(result.outputs).toEqual((await served(sub.promptId))?.outputs);
  });
});

describe('liveness without WebSocket pings', () => {
  it('keeps an idle socket on HTTP probes and replaces it when the probe fails', async () => {
    let failProbes = false;
    const probes: string[] = [];
    const fetchProbe: typeof fetch = (input, init) => {
      const url = String(input);
      if (url.endsWith('/prompt') && (init?.method ?? 'GET') === 'GET') {
        probes.push(url);
        if (failProbes) return Promise.reject(new TypeError('network down'));
      }
      return fetch(input, init);
    };
    const c = await client({ fetch: fetchProbe, session: { ...fast, pingIntervalMs: 150, pongTimeoutMs: 200 } });
    const states: string[] = [];
    c.onStatus((s) => states.push(s.state));
    await until(() => c.stats().livenessProbes >= 3, 'three probes on the idle socket');
    expect(states).toEqual([]);
    expect(probes.length).toBeGreaterThanOrEqual(3);
    failProbes = true;
    await c.waitFor((s) => s.state !== 'connected', 5_000);
    expect(c.status.lastError?.kind).toBe('heartbeat_timeout');
    failProbes = false;
    await c.waitConnected();
  });

  it('answers a liveness check from a recent frame without probing', async () => {
    await mock.speed(0.5);
    const c = await client({ session: { pingIntervalMs: 150, pongTimeoutMs: 1000 } });
    const sub = await c.submit(workflow('long_run'), { extraData: { mock_scenario: 'long_run' } });
    await until(() => c.stats().livenessByFrame >= 2, 'checks answered by frames');
    expect(c.status.state).toBe('connected');
    await c.interrupt(sub.promptId);
  });
});

describe('the progress throttle', () => {
  it('turns a 10,000-frame flood into at most one progress event per 16 ms window', async () => {
    const c = await client();
    const seen = new Map<string, number[]>();
    c.on('progress', (e) => {
      const key = `${e.promptId}/${e.node}`;
      seen.set(key, [...(seen.get(key) ?? []), performance.now()]);
    });
    const started = performance.now();
    const sent = await mock.firehose(c.clientId, 10_000);
    expect(sent).toBe(10_000);
    await until(() => c.stats().frames >= 10_000, 'every frame ingested');
    const elapsed = performance.now() - started;
    const total = [...seen.values()].reduce((n, times) => n + times.length, 0);
    // The mock cycles the recording with a fresh prompt id per cycle (626 frames).
    expect(seen.size).toBeGreaterThan(1);
    expect(seen.size).toBeLessThanOrEqual(Math.ceil(10_000 / 600));
    // Per (prompt, node): one event per window plus a leading and a trailing one.
    expect(total).toBeLessThanOrEqual(Math.ceil(elapsed / 16) + 2 * seen.size);
    // Most updates were merged, not delivered.
    expect(c.stats().coalescedProgress).toBeGreaterThan(10 * total);
  });
});
