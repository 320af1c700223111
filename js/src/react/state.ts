/**
 * `ComfyStore`: the state the hooks read, kept from one client's events and
 * published to subscribers at most once per throttle window, so a progress
 * flood costs each hook at most one render per window.
 * @module
 */
import type { ComfyClient } from '../client.js';
import type { ComfyEvent, ConnectionStatus, ExecutionRecord, QueueItem, Unsubscribe } from '../types.js';

/** Live progress of one prompt. */
export interface GenerationProgress {
  /** The prompt. */
  promptId: string;
  /** The node running now (its display node when it has one). */
  node: string | null;
  /** Current step of that node. */
  step: number;
  /** Steps of that node. */
  maxSteps: number;
  /** The node's progress, 0..100. */
  nodePercent: number;
  /** The whole prompt's progress, 0..100. */
  promptPercent: number;
  /** Estimated time to the end of the node's steps (ms), when it can be estimated. */
  etaMs: number | null;
  /** The latest preview as an object URL (browsers), with its MIME type. */
  preview: { url: string; mime: string } | null;
  /** `queued`, `running` or a terminal phase. */
  phase: ExecutionRecord['phase'];
}

/** The server's queue as last read. */
export interface QueueState {
  /** Running prompts. */
  running: QueueItem[];
  /** Pending prompts, in run order. */
  pending: QueueItem[];
  /** True while a refresh is under way. */
  loading: boolean;
  /** The last refresh's error message, if it failed. */
  error: string | null;
}

/** Everything the hooks read. Each field is replaced (never mutated) when it changes. */
export interface ComfyState {
  /** The client, once created. */
  client: ComfyClient | null;
  /** The connection status. */
  status: ConnectionStatus;
  /** Why creating the client failed, if it did. */
  createError: Error | null;
  /** Progress by prompt (the last 100 prompts at most). */
  progress: Readonly<Record<string, GenerationProgress>>;
  /** The prompt that started or progressed last. */
  currentPromptId: string | null;
  /** The server's queue. */
  queue: QueueState;
  /** The client's last finished executions (100 by default), oldest first. */
  history: readonly ExecutionRecord[];
}

const IDLE: ConnectionStatus = { state: 'idle', attempt: null, nextAttemptAt: null, lastError: null };
const MAX_PROGRESS = 100;

/** Per-node ETA bookkeeping. */
interface Rate {
  node: string;
  t0: number;
  v0: number;
}

/** State of one client for React, with throttled notification. */
export class ComfyStore {
  private state: ComfyState = {
    client: null,
    status: IDLE,
    createError: null,
    progress: {},
    currentPromptId: null,
    queue: { running: [], pending: [], loading: false, error: null },
    history: [],
  };
  private readonly listeners = new Set<() => void>();
  private readonly windowMs: number;
  private lastNotify = -Infinity;
  private notifyTimer: ReturnType<typeof setTimeout> | undefined;
  private detachClient: Unsubscribe | undefined;
  private readonly rates = new Map<string, Rate>();
  private queueInFlight = false;
  private queueDirty = false;
  private lastQueueRemaining: number | null = null;
  /** Notifications actually sent (for tests and diagnostics). */
  notifications = 0;

  /** A store publishing at most once per `windowMs` (16 by default, the core's progress window). */
  constructor(windowMs = 16) {
    this.windowMs = windowMs;
  }

  /** The current state (for `useSyncExternalStore`). */
  getSnapshot = (): ComfyState => this.state;

  /** Subscribes to (throttled) changes. */
  subscribe = (listener: () => void): Unsubscribe => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** Live subscribers (for leak checks). */
  get subscriberCount(): number {
    return this.listeners.size;
  }

  /** Starts following a client. */
  attach(client: ComfyClient): void {
    this.detach();
    const off = client.onAny((event) => this.onEvent(event));
    this.detachClient = off;
    this.update({ client, status: client.status, createError: null, history: client.history() });
    this.refreshQueue();
  }

  /** Stops following the client (the caller closes it) and revokes preview URLs. */
  detach(): void {
    this.detachClient?.();
    this.detachClient = undefined;
    for (const p of Object.values(this.state.progress)) revoke(p.preview);
    this.rates.clear();
    this.update({ client: null, status: IDLE, progress: {}, currentPromptId: null });
    this.flush();
  }

  /** Records why the client could not be created. */
  failed(error: Error): void {
    this.update({ createError: error });
  }

  /** Reads the server's queue again (one request at a time; a call during one runs once more after it). */
  refreshQueue(): void {
    const client = this.state.client;
    if (!client || client.closed) return;
    if (this.queueInFlight) {
      this.queueDirty = true;
      return;
    }
    this.queueInFlight = true;
    this.update({ queue: { ...this.state.queue, loading: true } });
    client.queue().then(
      (q) => this.queueDone(client, { running: q.running, pending: q.pending, loading: false, error: null }),
      (e: unknown) => this.queueDone(client, { ...this.state.queue, loading: false, error: String((e as Error).message ?? e) }),
    );
  }

  private queueDone(client: ComfyClient, queue: QueueState): void {
    this.queueInFlight = false;
    if (this.state.client !== client) return;
    this.update({ queue });
    if (this.queueDirty) {
      this.queueDirty = false;
      this.refreshQueue();
    }
  }

  private onEvent(event: ComfyEvent): void {
    switch (event.type) {
      case 'connection':
        this.update({ status: event.status });
        if (event.status.state === 'connected') this.refreshQueue();
        break;
      case 'status':
        if (event.queueRemaining !== this.lastQueueRemaining) {
          this.lastQueueRemaining = event.queueRemaining;
          this.refreshQueue();
        }
        break;
      case 'prompt_queued':
        this.setProgress(event.promptId, {}, 'queued');
        this.refreshQueue();
        break;
      case 'execution_started':
        this.setProgress(event.promptId, {}, 'running');
        break;
      case 'node_started':
        this.setProgress(event.promptId, { node: event.displayNode ?? event.node, step: 0, maxSteps: 0, nodePercent: 0, etaMs: null }, 'running');
        break;
      case 'progress': {
        const now = performance.now();
        const node = event.displayNode ?? event.node;
        let rate = this.rates.get(event.promptId);
        if (!rate || rate.node !== node || event.value < rate.v0) {
          rate = { node, t0: now, v0: event.value };
          this.rates.set(event.promptId, rate);
        }
        const done = event.value - rate.v0;
        const etaMs = done > 0 ? ((event.max - event.value) * (now - rate.t0)) / done : null;
        this.setProgress(
          event.promptId,
          {
            node,
            step: event.value,
            maxSteps: event.max,
            nodePercent: event.max > 0 ? Math.min(100, (100 * event.value) / event.max) : 0,
            promptPercent: Math.min(100, 100 * event.overall),
            etaMs,
          },
          'running',
        );
        break;
      }
      case 'preview': {
        if (event.promptId === null) break;
        const create = (globalThis as { URL?: { createObjectURL?: (b: Blob) => string } }).URL?.createObjectURL;
        if (typeof create !== 'function') break;
        const url = URL.createObjectURL(new Blob([event.image as Uint8Array<ArrayBuffer>], { type: event.mime }));
        revoke(this.state.progress[event.promptId]?.preview ?? null);
        this.setProgress(event.promptId, { preview: { url, mime: event.mime } }, 'running');
        break;
      }
      case 'finished': {
        const r = event.record;
        this.rates.delete(r.promptId);
        this.setProgress(r.promptId, { promptPercent: r.phase === 'succeeded' ? 100 : (this.state.progress[r.promptId]?.promptPercent ?? 0), etaMs: null }, r.phase);
        this.update({ history: this.state.client?.history() ?? this.state.history });
        this.refreshQueue();
        break;
      }
      default:
        break;
    }
  }

  private setProgress(promptId: string, patch: Partial<GenerationProgress>, phase: ExecutionRecord['phase']): void {
    const before = this.state.progress[promptId];
    if (before && isTerminalPhase(before.phase) && !isTerminalPhase(phase)) return;
    const next: GenerationProgress = {
      promptId,
      node: null,
      step: 0,
      maxSteps: 0,
      nodePercent: 0,
      promptPercent: 0,
      etaMs: null,
      preview: null,
      ...before,
      ...patch,
      phase,
    };
    const progress: Record<string, GenerationProgress> = { ...this.state.progress, [promptId]: next };
    const keys = Object.keys(progress);
    // Cleanup of old executions: keep the newest MAX_PROGRESS, finished ones go first.
    for (let i = 0; keys.length > MAX_PROGRESS && i < keys.length; i++) {
      const key = keys[i]!;
      const p = progress[key]!;
      if (key !== promptId && isTerminalPhase(p.phase)) {
        revoke(p.preview);
        delete progress[key];
        keys.splice(i--, 1);
      }
    }
    this.update({ progress, currentPromptId: isTerminalPhase(phase) ? this.state.currentPromptId : promptId });
  }

  private update(patch: Partial<ComfyState>): void {
    this.state = { ...this.state, ...patch };
    this.schedule();
  }

  /** Notifies now if a window has passed since the last notification, else at the window's end. */
  private schedule(): void {
    if (this.notifyTimer !== undefined) return;
    const wait = this.lastNotify + this.windowMs - performance.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      this.flush();
    }, wait);
  }

  private flush(): void {
    if (this.notifyTimer !== undefined) clearTimeout(this.notifyTimer);
    this.notifyTimer = undefined;
    this.lastNotify = performance.now();
    this.notifications++;
    for (const l of [...this.listeners]) l();
  }
}

function isTerminalPhase(phase: ExecutionRecord['phase']): boolean {
  return phase === 'succeeded' || phase === 'failed' || phase === 'interrupted' || phase === 'lost';
}

function revoke(preview: { url: string } | null): void {
  if (preview && typeof URL.revokeObjectURL === 'function') URL.revokeObjectURL(preview.url);
}
