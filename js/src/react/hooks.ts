/**
 * The hooks. Each reads one slice of the provider's store with
 * `useSyncExternalStore`, so a component re-renders only when its slice
 * changed, and at most once per notification window.
 * @module
 */
import { useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { ComfyClient, SubmitOptions, Submission } from '../client.js';
import type { Listener } from '../emitter.js';
import type { ComfyEventType, ConnectionError, ConnectionStateName, ExecutionRecord, QueueItem } from '../types.js';
import { StoreContext } from './provider.js';
import type { ComfyState, ComfyStore, GenerationProgress } from './state.js';

function useStore(): ComfyStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('comfywire hooks must be used inside <WebSocketProvider>');
  return store;
}

function useSlice<T>(select: (state: ComfyState) => T): T {
  const store = useStore();
  return useSyncExternalStore(
    store.subscribe,
    () => select(store.getSnapshot()),
    () => select(store.getSnapshot()),
  );
}

/** What `useWebSocket` returns. */
export interface WebSocketApi {
  /** The client, once created (null before, and after a failure). */
  client: ComfyClient | null;
  /** Why creating the client failed, if it did. */
  error: Error | null;
  /** Subscribes to one event type on the current client; returns the unsubscribe function. */
  subscribe: <T extends ComfyEventType>(type: T, listener: Listener<T>) => () => void;
}

/** The provider's client and a subscription helper. */
export function useWebSocket(): WebSocketApi {
  const client = useSlice((s) => s.client);
  const error = useSlice((s) => s.createError);
  const subscribe = useCallback(
    <T extends ComfyEventType>(type: T, listener: Listener<T>) => (client ? client.on(type, listener) : () => undefined),
    [client],
  );
  return { client, error, subscribe };
}

/**
 * Calls `listener` for every event of `type` while the component is
 * mounted (the latest listener is used; no re-subscription per render).
 */
export function useComfyEvent<T extends ComfyEventType>(type: T, listener: Listener<T>): void {
  const { client } = useWebSocket();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => {
    if (!client) return undefined;
    return client.on(type, (event) => latest.current(event));
  }, [client, type]);
}

/** What `useWebSocketStatus` returns. */
export interface WebSocketStatus {
  /** The connection state. */
  state: ConnectionStateName;
  /** The attempt under way or scheduled next. */
  attempt: number | null;
  /** Whole seconds until the next attempt (counts down while reconnecting or polling), else null. */
  secondsToRetry: number | null;
  /** Why the last connection or attempt ended. */
  lastError: ConnectionError | null;
  /** Skips the wait and reconnects now. */
  retryNow: () => void;
}

/** The connection status with a live retry countdown. */
export function useWebSocketStatus(): WebSocketStatus {
  const status = useSlice((s) => s.status);
  const client = useSlice((s) => s.client);
  // A tick re-renders the countdown four times a second while a retry is scheduled.
  const [, setTick] = useState(0);
  const at = status.nextAttemptAt;
  useEffect(() => {
    if (at === null) return undefined;
    const timer = setInterval(() => setTick((n) => n + 1), 250);
    return () => clearInterval(timer);
  }, [at]);
  const retryNow = useCallback(() => client?.retryNow(), [client]);
  const secondsToRetry = at === null ? null : Math.max(0, Math.ceil((at - performance.now()) / 1000));
  return { state: status.state, attempt: status.attempt, secondsToRetry, lastError: status.lastError, retryNow };
}

/** Live progress of one prompt, or of the one that started or progressed last; null before any. */
export function useGenerationProgress(promptId?: string): GenerationProgress | null {
  return useSlice((s) => {
    const id = promptId ?? s.currentPromptId;
    return id === null ? null : (s.progress[id] ?? null);
  });
}

/** What `useExecutionQueue` returns. */
export interface ExecutionQueue {
  /** Running prompts (the server's queue). */
  running: QueueItem[];
  /** Pending prompts, in run order. */
  pending: QueueItem[];
  /** True while the queue is being read. */
  loading: boolean;
  /** The last read's error, if it failed. */
  error: string | null;
  /** Submits a workflow. */
  add: (workflow: Record<string, unknown>, options?: SubmitOptions) => Promise<Submission>;
  /** Removes a pending prompt. */
  remove: (promptId: string) => Promise<void>;
  /** Empties the pending queue. */
  clear: () => Promise<void>;
  /** Interrupts the running prompt (only `promptId`, when given). */
  interrupt: (promptId?: string) => Promise<void>;
  /** Reads the queue again. */
  refresh: () => void;
}

function needClient(client: ComfyClient | null): ComfyClient {
  if (!client) throw new Error('not connected yet: the client is still being created');
  return client;
}

/** The server's queue with its actions; it refreshes itself on queue changes. */
export function useExecutionQueue(): ExecutionQueue {
  const store = useStore();
  const queue = useSlice((s) => s.queue);
  const client = useSlice((s) => s.client);
  const add = useCallback(
    async (workflow: Record<string, unknown>, options?: SubmitOptions) => {
      const submission = await needClient(client).submit(workflow, options);
      store.refreshQueue();
      return submission;
    },
    [client, store],
  );
  const remove = useCallback(
    async (promptId: string) => {
      await needClient(client).deleteFromQueue([promptId]);
      store.refreshQueue();
    },
    [client, store],
  );
  const clear = useCallback(async () => {
    await needClient(client).clearQueue();
    store.refreshQueue();
  }, [client, store]);
  const interrupt = useCallback(
    async (promptId?: string) => {
      await needClient(client).interrupt(promptId);
      store.refreshQueue();
    },
    [client, store],
  );
  const refresh = useCallback(() => store.refreshQueue(), [store]);
  return { ...queue, add, remove, clear, interrupt, refresh };
}

/** The client's last finished executions (100 by default), newest first. */
export function useExecutionHistory(): readonly ExecutionRecord[] {
  const history = useSlice((s) => s.history);
  return newestFirst(history);
}

const reversed = new WeakMap<readonly ExecutionRecord[], readonly ExecutionRecord[]>();

function newestFirst(history: readonly ExecutionRecord[]): readonly ExecutionRecord[] {
  let out = reversed.get(history);
  if (!out) {
    out = [...history].reverse();
    reversed.set(history, out);
  }
  return out;
}
