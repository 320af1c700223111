/**
 * The shapes the core hands out (they mirror
 * `bindings/comfywire-wasm/src/dto.rs`): connection status, execution
 * records and the event union. Times are `performance.now()` milliseconds.
 * @module
 */

/** Where the connection is. */
export type ConnectionStateName =
  | 'idle'
  | 'connecting'
  | 'connected'
  | 'reconnecting'
  | 'polling'
  | 'paused'
  | 'closed';

/** Why the last connection or attempt ended. */
export interface ConnectionError {
  /** `connect_failed`, `lost`, `heartbeat_timeout` (liveness check failed) or `deaf` (silent while a prompt ran). */
  kind: 'connect_failed' | 'lost' | 'heartbeat_timeout' | 'deaf' | 'other';
  /** Human-readable description. */
  message: string;
  /** The close code of a `lost` socket, when there was one. */
  code: number | null;
}

/** Connection state plus the last error. */
export interface ConnectionStatus {
  /** The state. */
  state: ConnectionStateName;
  /** The attempt under way (`connecting`) or scheduled next (`reconnecting`, `polling`). */
  attempt: number | null;
  /** When the next attempt is made (`performance.now()` ms). */
  nextAttemptAt: number | null;
  /** The error that ended the last connection or attempt. */
  lastError: ConnectionError | null;
}

/** A prompt's phase; the last four are terminal. */
export type Phase = 'submitted' | 'queued' | 'running' | 'succeeded' | 'failed' | 'interrupted' | 'lost';

/** One node of an execution. */
export interface NodeRecord {
  /** Node id (possibly ephemeral). */
  id: string;
  /** The node of the submitted graph to show it on. */
  displayNode: string | null;
  /** Where the node is. */
  phase: 'cached' | 'running' | 'done' | 'failed' | 'interrupted';
  /** Last step. */
  value: number;
  /** Last maximum. */
  max: number;
  /** Start (ms). */
  startedAt: number | null;
  /** End (ms). */
  finishedAt: number | null;
}

/** The server's `execution_error` payload. */
export interface ExecutionErrorInfo {
  /** The prompt. */
  prompt_id: string;
  /** The failing node. */
  node_id: string | null;
  /** Its class type. */
  node_type: string | null;
  /** Nodes finished in this run. */
  executed: string[];
  /** The exception's message. */
  exception_message: string;
  /** The exception's class. */
  exception_type: string;
  /** Stack frames. */
  traceback: string[];
  /** Inputs of the failing node. */
  current_inputs: unknown;
  /** Every node id of the prompt. */
  current_outputs: string[];
  /** Server time (ms since the epoch). */
  timestamp: number | null;
}

/** The server's `execution_interrupted` payload. */
export interface InterruptedInfo {
  /** The prompt. */
  prompt_id: string;
  /** The node that was running. */
  node_id: string | null;
  /** Its class type. */
  node_type: string | null;
  /** Nodes finished before the interrupt. */
  executed: string[];
  /** Server time (ms since the epoch). */
  timestamp: number | null;
}

/** How a prompt ended. */
export type Outcome =
  | { kind: 'succeeded' }
  | { kind: 'failed'; error: ExecutionErrorInfo }
  | { kind: 'interrupted'; info: InterruptedInfo }
  | { kind: 'lost'; reason: string };

/** Everything known about one prompt's execution. */
export interface ExecutionRecord {
  /** The prompt. */
  promptId: string;
  /** True when this client submitted it. */
  ours: boolean;
  /** Queue number. */
  number: number | null;
  /** Phase. */
  phase: Phase;
  /** The outcome, once terminal. */
  outcome: Outcome | null;
  /** Nodes in the order they appeared. */
  nodes: NodeRecord[];
  /** Nodes served from the cache. */
  cached: string[];
  /** UI outputs by node id (`{images: [{filename, subfolder, type}]}` and so on). */
  outputs: Record<string, Record<string, unknown>>;
  /** Nodes of the submitted graph. */
  expectedNodes: number | null;
  /** Whole-prompt progress in [0, 1]. */
  progress: number;
  /** `node_errors` of a partially valid prompt. */
  nodeErrors: unknown;
  /** Submission (ms). */
  submittedAt: number | null;
  /** Start (ms). */
  startedAt: number | null;
  /** End (ms). */
  finishedAt: number | null;
  /** Server start time (ms since the epoch). */
  serverStartedMs: number | null;
  /** Server end time (ms since the epoch). */
  serverFinishedMs: number | null;
  /** True when the socket was down while it was in flight. */
  hadGap: boolean;
}

/** A reconciliation request of the session. */
export type SessionRequest = { kind: 'history'; promptId: string } | { kind: 'queue' };

/** Every event, discriminated by `type`. */
export type ComfyEvent =
  | { type: 'connection'; status: ConnectionStatus }
  | { type: 'status'; queueRemaining: number | null; sid: string | null }
  | { type: 'feature_flags'; flags: Record<string, unknown> }
  | { type: 'prompt_queued'; promptId: string; number: number | null }
  | { type: 'execution_started'; promptId: string }
  | { type: 'nodes_cached'; promptId: string; nodes: string[] }
  | { type: 'node_started'; promptId: string; node: string; displayNode: string | null }
  | {
      type: 'progress';
      promptId: string;
      node: string;
      displayNode: string | null;
      value: number;
      max: number;
      overall: number;
      /** Seconds until the node should finish at its pace so far (null before its first step and after its last). */
      etaS: number | null;
    }
  | { type: 'preview'; promptId: string | null; node: string | null; mime: string; image: Uint8Array }
  | { type: 'progress_text'; promptId: string | null; node: string; text: string }
  | {
      type: 'output';
      promptId: string;
      node: string;
      displayNode: string | null;
      output: Record<string, unknown>;
      recovered: boolean;
    }
  | { type: 'node_finished'; promptId: string; node: string }
  | { type: 'blocked'; promptId: string; error: ExecutionErrorInfo }
  | { type: 'finished'; record: ExecutionRecord }
  | { type: 'message'; name: string; promptId: string | null; data: unknown }
  | { type: 'bad_frame'; error: { code: string; message: string } }
  | { type: 'http_failed'; request: SessionRequest; error: string };

/** The `type` of every event. */
export type ComfyEventType = ComfyEvent['type'];

/** The event of one type. */
export type EventOf<T extends ComfyEventType> = Extract<ComfyEvent, { type: T }>;

/** A command of the core for its driver. */
export type SessionCommand =
  | { type: 'connect'; clientId: string | null }
  | { type: 'send'; text: string }
  | { type: 'ping' }
  | { type: 'close'; code: number; reason: string }
  | { type: 'http'; request: SessionRequest };

/** Reconnect backoff. */
export interface BackoffOptions {
  /** Delay before the first retry (ms, default 1000). */
  initialMs?: number;
  /** Growth per failure (default 2). */
  multiplier?: number;
  /** Cap of any delay (ms, default 30000). */
  maxMs?: number;
  /** Jitter fraction 0..1 (default 0). */
  jitter?: number;
}

/** The core's tunables; absent keys keep the defaults. Durations in ms. */
export interface SessionOptions {
  /** Reconnect backoff. */
  backoff?: BackoffOptions;
  /** Jitter seed (integer below 2^53). */
  seed?: number;
  /** A connection up this long resets the backoff (10000). */
  stableAfterMs?: number;
  /** Failed connects in a row before polling over HTTP (5). */
  pollingAfterFailures?: number;
  /** Poll interval while polling (2000). */
  pollIntervalMs?: number;
  /** Liveness check interval while connected (30000). */
  pingIntervalMs?: number;
  /** How long a liveness check may take (10000). */
  pongTimeoutMs?: number;
  /** Silence while a prompt of ours runs before reconciling (30000; null: never). */
  deafTimeoutMs?: number | null;
  /** Progress throttle window (16). */
  progressIntervalMs?: number;
  /** Preview throttle window (50). */
  previewIntervalMs?: number;
  /** Finished executions kept (100). */
  historyCapacity?: number;
  /** Other clients' in-flight prompts kept (256). */
  maxForeignPrompts?: number;
  /** Delay before re-checking a prompt found nowhere (1000). */
  lostRecheckMs?: number;
  /** Feature flags sent first on every socket. */
  featureFlags?: Record<string, unknown>;
}

/** Core counters. */
export interface CoreStats {
  /** Frames handed to the core. */
  frames: number;
  /** Frames that failed to parse. */
  badFrames: number;
  /** Successful connects after the first. */
  reconnects: number;
  /** Failed connects in a row right now. */
  consecutiveFailures: number;
  /** Progress updates merged by the throttle. */
  coalescedProgress: number;
  /** Previews merged by the throttle. */
  coalescedPreviews: number;
}

/** One item of `GET /queue`. */
export interface QueueItem {
  /** Queue number. */
  number: number;
  /** The prompt. */
  promptId: string;
  /** The submitting client, when recorded. */
  clientId: string | null;
}

/** `GET /queue`, pending in run order. */
export interface QueueSnapshot {
  /** Running prompts. */
  running: QueueItem[];
  /** Pending prompts. */
  pending: QueueItem[];
}

/** A file the server serves from `/view`. */
export interface FileRef {
  /** File name. */
  filename: string;
  /** Subfolder ('' for none). */
  subfolder: string;
  /** `output`, `temp` or `input`. */
  type: string;
}

/** A function that ends a subscription. */
export type Unsubscribe = () => void;
