/**
 * The WebAssembly core at its boundary: typed errors for bad input, no
 * panic on garbage frames, and the run loop's outputs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCore, WasmSession } from '../src/core/load.js';
import type { ComfyEvent, SessionCommand } from '../src/types.js';

beforeAll(async () => {
  await loadCore();
});

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    expect((e as Error).name).toBe('ComfywireCoreError');
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('WasmSession', () => {
  it('throws typed errors for bad options and bad arguments', () => {
    expect(codeOf(() => new WasmSession({ noSuchOption: 1 }, 0))).toBe('invalid_options');
    expect(codeOf(() => new WasmSession({ pingIntervalMs: 'soon' }, 0))).toBe('invalid_options');
    expect(codeOf(() => new WasmSession({ backoff: { jitter: 3 } }, 0))).toBe('invalid_options');
    const s = new WasmSession(undefined, 0);
    expect(codeOf(() => s.promptAccepted('p', 1, '{not json', 1))).toBe('invalid_json');
    expect(codeOf(() => s.handleHttpFailed('teapot', undefined, 'x', 1))).toBe('invalid_request');
    expect(codeOf(() => s.handleHttpFailed('history', undefined, 'x', 1))).toBe('invalid_request');
    s.free();
  });

  it('reads garbage frames as bad_frame events and goes on', () => {
    const s = new WasmSession({ clientId: 'c1' }, 0);
    s.connect(0);
    expect((s.drainCommands() as SessionCommand[])[0]).toEqual({ type: 'connect', clientId: 'c1' });
    s.handleConnected(1);
    const sent = s.drainCommands() as SessionCommand[];
    expect(sent[0]?.type).toBe('send');
    s.handleText('this is not JSON', 2);
    s.handleBinary(new Uint8Array([0, 0, 0, 4, 0, 0]), 3);
    s.handleBinary(new Uint8Array([]), 4);
    s.handleHistory('p', 'not json either', 5);
    s.handleQueue('[]', 6);
    s.handleTimeout(Number.NaN);
    s.handleTimeout(1e300);
    const events = s.drainEvents() as ComfyEvent[];
    const bad = events.filter((e) => e.type === 'bad_frame');
    expect(bad.map((e) => e.type === 'bad_frame' && e.error.code)).toEqual(['invalid_json', 'truncated_binary', 'truncated_binary']);
    expect(s.status()).toMatchObject({ state: 'connected' });
    s.free();
  });

  it('tracks a prompt to exactly one terminal event with times on the caller clock', () => {
    const s = new WasmSession({ clientId: 'c1' }, 1000);
    s.connect(1000);
    s.handleConnected(1001);
    s.trackPrompt('p1', 1, 1002);
    s.promptAccepted('p1', 0, '{}', 1003);
    const frames = [
      '{"type": "execution_start", "data": {"prompt_id": "p1", "timestamp": 1}}',
      '{"type": "executing", "data": {"node": "9", "display_node": "9", "prompt_id": "p1"}}',
      '{"type": "executed", "data": {"node": "9", "display_node": "9", "prompt_id": "p1", "output": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}}',
      '{"type": "execution_success", "data": {"prompt_id": "p1", "timestamp": 3}}',
      '{"type": "executing", "data": {"node": null, "prompt_id": "p1"}}',
    ];
    frames.forEach((f, i) => s.handleText(f, 1010 + i));
    const events = s.drainEvents() as ComfyEvent[];
    const finished = events.filter((e) => e.type === 'finished');
    expect(finished).toHaveLength(1);
    const record = finished[0]!.type === 'finished' ? finished[0]!.record : undefined;
    expect(record?.phase).toBe('succeeded');
    expect(record?.outputs['9']).toEqual({ images: [{ filename: 'a.png', subfolder: '', type: 'output' }] });
    expect(record?.submittedAt).toBeCloseTo(1002, 3);
    expect(record?.finishedAt).toBeGreaterThanOrEqual(1013);
    // A late duplicate changes nothing.
    s.handleText(frames[3]!, 1100);
    expect((s.drainEvents() as ComfyEvent[]).filter((e) => e.type === 'finished')).toHaveLength(0);
    // The liveness check is due one ping interval after connecting.
    expect(s.nextTimeout()).toBeGreaterThan(1001);
    s.free();
  });
});
