// @vitest-environment jsdom
/**
 * The React bindings with Testing Library against a real comfywire-mock:
 * state updates, several components at once, cleanup on unmount, and the
 * render count under a 10,000-frame progress flood.
 */
import { act, cleanup, render, screen } from '@testing-library/react';
import { Profiler, StrictMode, useContext, useRef, type ReactNode } from 'react';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ComfyClient, SocketConstructor } from '../../src/index.js';
import {
  type ComfyStore,
  PREFS_KEY,
  StoreContext,
  useConnectionPrefs,
  useExecutionHistory,
  useExecutionQueue,
  useGenerationProgress,
  useWebSocket,
  useWebSocketStatus,
  WebSocketProvider,
} from '../../src/react/index.js';
import { Mock, until, wasmBytes, workflow } from '../support.js';

let mock: Mock;

beforeAll(async () => {
  mock = await Mock.start(4);
});
afterAll(async () => {
  await mock.stop();
});
afterEach(async () => {
  cleanup();
  clientBox.current = null;
  await mock.fault({ fault: 'refuse_connects', count: 0 });
  await mock.speed(4);
});

const options = { wasm: wasmBytes(), WebSocket: WebSocket as unknown as SocketConstructor, session: { backoff: { initialMs: 50, maxMs: 200 } } };

/** Exposes the provider's client to the test. */
const clientBox: { current: ComfyClient | null } = { current: null };

function ClientProbe(): ReactNode {
  clientBox.current = useWebSocket().client;
  return null;
}

function Wrap({ children }: { children: ReactNode }): ReactNode {
  return (
    <WebSocketProvider url={mock.url} options={options}>
      <ClientProbe />
      {children}
    </WebSocketProvider>
  );
}

function Status(): ReactNode {
  const s = useWebSocketStatus();
  return (
    <div>
      <span data-testid="state">{s.state}</span>
      <span data-testid="retry">{s.secondsToRetry ?? '-'}</span>
      <button onClick={s.retryNow}>retry</button>
    </div>
  );
}

function Progress({ id }: { id?: string }): ReactNode {
  const p = useGenerationProgress(id);
  return <span data-testid={`progress-${id ?? 'current'}`}>{p ? `${p.phase} ${p.step}/${p.maxSteps} ${Math.round(p.promptPercent)}` : 'none'}</span>;
}

function History(): ReactNode {
  const h = useExecutionHistory();
  return <span data-testid="history">{h.map((r) => `${r.promptId}:${r.phase}`).join(',')}</span>;
}

function Queue(): ReactNode {
  const q = useExecutionQueue();
  return <span data-testid="queue">{`${q.running.map((i) => i.promptId).join(',')}|${q.pending.map((i) => i.promptId).join(',')}`}</span>;
}

async function connected(): Promise<ComfyClient> {
  await until(() => screen.queryByTestId('state')?.textContent === 'connected', 'connected');
  return clientBox.current!;
}

describe('hooks', () => {
  it('follow a run: status, progress, queue and history across several components', async () => {
    await mock.speed(2);
    render(
      <Wrap>
        <Status />
        <Progress />
        <Queue />
        <History />
        <History />
      </Wrap>,
    );
    const client = await connected();
    const sub = await act(() => client.submit(workflow('success_single'), { extraData: { mock_scenario: 'success_single' } }));
    await until(() => /running \d+\/8/.test(screen.getByTestId('progress-current').textContent ?? ''), 'progress shown');
    await until(() => screen.getByTestId('queue').textContent === `${sub.promptId}|`, 'the queue shows it running');
    await until(() => screen.getAllByTestId('history')[0]!.textContent === `${sub.promptId}:succeeded`, 'history shows it');
    expect(screen.getAllByTestId('history')[1]!.textContent).toBe(`${sub.promptId}:succeeded`);
    expect(screen.getByTestId('progress-current').textContent).toMatch(/^succeeded \d+\/\d+ 100$/);
    expect((await mock.history(sub.promptId))?.status.status_str).toBe('success');
    await until(() => screen.getByTestId('queue').textContent === '|', 'the queue empty again');
  });

  it('show reconnecting with a countdown after a drop, and retry now', async () => {
    render(
      <WebSocketProvider url={mock.url} options={{ ...options, session: { backoff: { initialMs: 5000, maxMs: 5000 } } }}>
        <ClientProbe />
        <Status />
      </WebSocketProvider>,
    );
    await connected();
    await mock.fault({ fault: 'drop_sockets_now' });
    await until(() => screen.getByTestId('state').textContent === 'reconnecting', 'reconnecting');
    const seconds = Number(screen.getByTestId('retry').textContent);
    expect(seconds).toBeGreaterThanOrEqual(4);
    expect(seconds).toBeLessThanOrEqual(5);
    act(() => screen.getByText('retry').click());
    await until(() => screen.getByTestId('state').textContent === 'connected', 'connected after retry now', 3000);
  });

  it('clean up on unmount: no store subscribers, no client listeners, no socket left open', async () => {
    const before = (await mock.stats())['open_sockets']!;
    const view = render(
      <StrictMode>
        <Wrap>
          <Status />
          <Progress />
          <Queue />
          <History />
        </Wrap>
      </StrictMode>,
    );
    const client = await connected();
    expect((await mock.stats())['open_sockets']).toBe(before + 1);
    view.unmount();
    expect(client.closed).toBe(true);
    expect(client.stats().listeners).toBe(0);
    await until(async () => (await mock.stats())['open_sockets'] === before, 'the socket closed');
  });

  it('leave no store subscriber behind when hook components unmount', async () => {
    let store: ComfyStore | null = null;
    function StoreProbe(): ReactNode {
      store = useContext(StoreContext);
      return null;
    }
    const many = [0, 1, 2].map((i) => (
      <div key={i}>
        <Status />
        <Progress />
        <Queue />
        <History />
      </div>
    ));
    const view = render(
      <Wrap>
        <StoreProbe />
      </Wrap>,
    );
    const client = await until(() => clientBox.current, 'the client');
    const baseline = store!.subscriberCount;
    const listeners = client.stats().listeners;
    view.rerender(
      <Wrap>
        <StoreProbe />
        {many}
      </Wrap>,
    );
    await client.waitConnected();
    expect(store!.subscriberCount).toBeGreaterThan(baseline);
    view.rerender(
      <Wrap>
        <StoreProbe />
      </Wrap>,
    );
    expect(store!.subscriberCount).toBe(baseline);
    expect(client.stats().listeners).toBe(listeners);
  });

  it('persist connection preferences', () => {
    useConnectionPrefs.getState().setPrefs({ url: 'http://example.invalid:8188', debug: true });
    const saved = JSON.parse(localStorage.getItem(PREFS_KEY) ?? '{}') as { state?: { url?: string; debug?: boolean } };
    expect(saved.state).toMatchObject({ url: 'http://example.invalid:8188', debug: true });
    useConnectionPrefs.getState().reset();
  });
});

describe('render budget', () => {
  it('renders at most once per 16 ms window under a 10,000-frame flood', async () => {
    let renders = 0;
    function Counted(): ReactNode {
      const p = useGenerationProgress();
      const ref = useRef(0);
      ref.current++;
      return <span data-testid="flood">{p ? `${p.step}/${p.maxSteps}` : 'none'}</span>;
    }
    render(
      <Wrap>
        <Status />
        <Profiler id="flood" onRender={() => renders++}>
          <Counted />
        </Profiler>
      </Wrap>,
    );
    const client = await connected();
    const baseline = renders;
    const started = performance.now();
    const sent = await mock.firehose(client.clientId, 10_000);
    expect(sent).toBe(10_000);
    await until(() => client.stats().frames >= 10_000, 'every frame ingested');
    // Let the last window's notification land before counting.
    await until(() => screen.getByTestId('flood').textContent !== 'none', 'progress rendered');
    const elapsed = performance.now() - started;
    const floodRenders = renders - baseline;
    expect(floodRenders).toBeGreaterThan(0);
    expect(floodRenders).toBeLessThanOrEqual(Math.ceil(elapsed / 16) + 3);
  });
});
