/**
 * `ComfyClient`: the job API over the driver (submit, run, wait with
 * deadlines, queue, interrupt, history, view / download, upload), typed
 * subscriptions and lifecycle hints.
 * @module
 */
import { loadCore, type WasmSource } from './core/load.js';
import { SessionDriver, type DriverStats, type TrafficEntry } from './driver.js';
import { EventHub, type Listener } from './emitter.js';
import { ComfyError } from './errors.js';
import { Endpoints, HttpApi, parseOrText, type BasicAuth } from './http.js';
import { files } from './outputs.js';
import { resolveWebSocket, type SocketConstructor } from './transport.js';
import type {
  ComfyEvent,
  ComfyEventType,
  ConnectionStatus,
  CoreStats,
  ExecutionRecord,
  FileRef,
  QueueItem,
  QueueSnapshot,
  SessionOptions,
  Unsubscribe,
} from './types.js';

/** Longest waits of `wait` and `run`; absent means no limit. */
export interface Deadlines {
  /** Longest wait for the prompt to start (ms). */
  queueMs?: number;
  /** Longest time without any event of the prompt while it runs (ms). */
  stallMs?: number;
  /** Longest time from the call to the end (ms). */
  totalMs?: number;
}

/** Lifecycle hints the client takes from the page. */
export interface LifecycleOptions {
  /** Pause the socket while the page is hidden (`visibilitychange`), resume when visible (default false). */
  pauseWhenHidden?: boolean;
  /** Re-check the connection when the browser comes back `online` (default true). */
  networkChanges?: boolean;
}

/** How a client is built. */
export interface ComfyClientOptions {
  /** Server URL: `http(s)://host:port[/prefix]`; relative URLs resolve against the page. */
  url: string;
  /** The `clientId` (a fresh UUID when absent, kept across reconnects). */
  clientId?: string;
  /** Extra headers on every HTTP request (browsers cannot set them on the socket). */
  headers?: Record<string, string>;
  /** HTTP Basic credentials for a proxy. */
  auth?: BasicAuth;
  /** A `token` query parameter on the socket URL (cloud proxies). */
  token?: string;
  /** The core's tunables (backoff, polling, liveness, throttles, history size). */
  session?: SessionOptions;
  /** Deadlines of `run` (and of `wait` when none are given). */
  deadlines?: Deadlines;
  /** Opening a socket may take this long (ms, default 10000). */
  connectTimeoutMs?: number;
  /** Any HTTP request may take this long (ms, default 30000). */
  requestTimeoutMs?: number;
  /** Log the traffic: `true` for `console.debug`, or a sink of your own. */
  debug?: boolean | ((entry: TrafficEntry) => void);
  /** Page lifecycle hints (browsers only). */
  lifecycle?: LifecycleOptions;
  /** The WebSocket constructor (the global one, else the `ws` package). */
  WebSocket?: SocketConstructor;
  /** The `fetch` to use (the global one by default). */
  fetch?: typeof fetch;
  /** Where to load the `.wasm` from (next to the glue by default). */
  wasm?: WasmSource;
}

/** Options of `submit`. */
export interface SubmitOptions {
  /** The prompt id (a fresh UUID by default). */
  promptId?: string;
  /** `extra_data` of the request. */
  extraData?: Record<string, unknown>;
  /** Put it at the front of the queue. */
  front?: boolean;
  /** Run only these output nodes. */
  partialExecutionTargets?: string[];
}

/** What `submit` returns. */
export interface Submission {
  /** The prompt id. */
  promptId: string;
  /** Its queue number. */
  number: number | null;
  /** `node_errors` when some outputs were skipped (partially valid prompt), else null. */
  nodeErrors: Record<string, unknown> | null;
}

/** What a successful `run` / `wait` returns. */
export interface RunResult {
  /** The prompt id. */
  promptId: string;
  /** The whole record. */
  record: ExecutionRecord;
  /** UI outputs by node id. */
  outputs: ExecutionRecord['outputs'];
  /** Every file among the outputs. */
  files: FileRef[];
}

/** Options of `upload`. */
export interface UploadOptions {
  /** Replace a file of the same name (default false: the server renames). */
  overwrite?: boolean;
  /** Subfolder of the input folder. */
  subfolder?: string;
  /** `input` (default), `temp` or `output`. */
  type?: string;
}

function newUuid(): string {
  return globalThis.crypto.randomUUID();
}

function asRecord(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** A ComfyUI client: one socket, one core, the job API. */
export class ComfyClient {
  /** The server's URLs. */
  readonly endpoints: Endpoints;
  private readonly http: HttpApi;
  private readonly driver: SessionDriver;
  private readonly hub: EventHub;
  private readonly deadlines: Deadlines;
  private readonly id: string;
  private readonly waiters = new Set<(error: ComfyError) => void>();
  private detachLifecycle: Unsubscribe | undefined;

  private constructor(options: ComfyClientOptions, WebSocket: SocketConstructor) {
    this.endpoints = new Endpoints(options.url, options.token);
    const httpOptions: ConstructorParameters<typeof HttpApi>[1] = {};
    if (options.fetch) httpOptions.fetch = options.fetch;
    if (options.headers) httpOptions.headers = options.headers;
    if (options.auth) httpOptions.auth = options.auth;
    if (options.requestTimeoutMs !== undefined) httpOptions.timeoutMs = options.requestTimeoutMs;
    this.http = new HttpApi(this.endpoints, httpOptions);
    this.hub = new EventHub((error) => console.error('comfywire: a listener threw', error));
    this.deadlines = options.deadlines ?? {};
    this.id = options.clientId ?? newUuid();
    const driverOptions: ConstructorParameters<typeof SessionDriver>[0] = {
      http: this.http,
      session: options.session ?? {},
      clientId: this.id,
      WebSocket,
      onEvents: (events) => this.hub.emit(events),
    };
    if (options.connectTimeoutMs !== undefined) driverOptions.connectTimeoutMs = options.connectTimeoutMs;
    this.driver = new SessionDriver(driverOptions);
    this.setDebug(options.debug ?? false);
  }

  /**
   * Loads the core, builds a client and starts connecting (it does not wait
   * for the socket: see `waitConnected`). Rejects with `invalid_argument`
   * on a bad URL or bad session options.
   */
  static async create(options: ComfyClientOptions): Promise<ComfyClient> {
    await loadCore(options.wasm);
    const WebSocket = await resolveWebSocket(options.WebSocket);
    let client: ComfyClient;
    try {
      client = new ComfyClient(options, WebSocket);
    } catch (error) {
      if (error instanceof ComfyError) throw error;
      const e = error as { name?: string; message?: string };
      if (e.name === 'ComfywireCoreError') {
        throw new ComfyError('invalid_argument', e.message ?? 'invalid options', { cause: error });
      }
      throw error;
    }
    client.driver.start();
    client.detachLifecycle = client.attachLifecycle(options.lifecycle ?? {});
    return client;
  }

  // ---- state ----

  /** The `clientId` of the socket. */
  get clientId(): string {
    return this.id;
  }

  /** The connection status. */
  get status(): ConnectionStatus {
    return this.driver.status;
  }

  /** True once `close` ran. */
  get closed(): boolean {
    return this.driver.isClosed;
  }

  /** Core and driver counters. */
  stats(): CoreStats & DriverStats & { listeners: number } {
    return { ...this.driver.coreStats(), ...this.driver.stats, listeners: this.hub.size };
  }

  /** Resolves once connected; rejects with `timeout` after `timeoutMs`, `closed` if closed. */
  waitConnected(timeoutMs = 10_000): Promise<void> {
    return this.waitFor((s) => s.state === 'connected', timeoutMs);
  }

  /** Resolves when the status satisfies `predicate`; rejects with `timeout` or `closed`. */
  waitFor(predicate: (status: ConnectionStatus) => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate(this.status)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: ComfyError): void => {
        clearTimeout(timer);
        off();
        this.waiters.delete(done);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(
        () => done(new ComfyError('timeout', `status not reached within ${timeoutMs} ms (${this.status.state})`)),
        timeoutMs,
      );
      const off = this.on('connection', (e) => {
        if (predicate(e.status)) done();
      });
      this.waiters.add(done);
    });
  }

  // ---- subscriptions ----

  /** Listens to one event type; returns the function that stops it. */
  on<T extends ComfyEventType>(type: T, listener: Listener<T>): Unsubscribe {
    return this.hub.on(type, listener);
  }

  /** Listens to every event. */
  onAny(listener: (event: ComfyEvent) => void): Unsubscribe {
    return this.hub.onAny(listener);
  }

  /** Listens to connection status changes. */
  onStatus(listener: (status: ConnectionStatus) => void): Unsubscribe {
    return this.hub.on('connection', (e) => listener(e.status));
  }

  // ---- connection control ----

  /** Skips the backoff wait and reconnects now. */
  retryNow(): void {
    this.driver.retryNow();
  }

  /** Closes the socket and stops retrying until `resume` (the app went to the background). */
  pause(): void {
    this.driver.pause();
  }

  /** Reconnects after `pause`. */
  resume(): void {
    this.driver.resume();
  }

  /** The network changed: check the socket now, or retry now. */
  networkChanged(): void {
    this.driver.networkChanged();
  }

  /** Turns the traffic log on (`true`: `console.debug`; or a sink) or off. */
  setDebug(debug: boolean | ((entry: TrafficEntry) => void)): void {
    if (typeof debug === 'function') this.driver.onTraffic = debug;
    else this.driver.onTraffic = debug ? (e) => console.debug(`comfywire ${e.kind}: ${e.text}`) : undefined;
  }

  /** Closes the socket, stops every timer and rejects pending waits with `closed`. */
  close(): void {
    if (this.driver.isClosed) return;
    this.detachLifecycle?.();
    this.driver.close();
    for (const fail of [...this.waiters]) fail(new ComfyError('closed', 'the client was closed'));
    this.hub.clear();
  }

  /** Hooks `visibilitychange` and `online` as the options ask; returns the function that unhooks them. */
  attachLifecycle(options: LifecycleOptions): Unsubscribe {
    const doc = (globalThis as { document?: Document }).document;
    const win = (globalThis as { window?: Window }).window;
    const undo: Unsubscribe[] = [];
    if (options.pauseWhenHidden && doc) {
      const onVisibility = (): void => {
        if (doc.visibilityState === 'hidden') this.pause();
        else this.resume();
      };
      doc.addEventListener('visibilitychange', onVisibility);
      undo.push(() => doc.removeEventListener('visibilitychange', onVisibility));
    }
    if ((options.networkChanges ?? true) && win) {
      const onOnline = (): void => this.networkChanged();
      win.addEventListener('online', onOnline);
      undo.push(() => win.removeEventListener('online', onOnline));
    }
    return () => {
      for (const u of undo.splice(0)) u();
    };
  }

  // ---- executions known to this client ----

  /** The record of a prompt, in flight or finished (from the core). */
  execution(promptId: string): ExecutionRecord | undefined {
    return this.driver.execution(promptId);
  }

  /** The last finished executions (100 by default), oldest first. */
  history(): ExecutionRecord[] {
    return this.driver.history();
  }

  // ---- jobs ----

  /**
   * Submits an API-format workflow. The prompt id is registered with the
   * core before the request leaves, so no event can be missed. Rejects with
   * `validation` (refused workflow), `http` or `network`.
   */
  async submit(workflow: Record<string, unknown>, options: SubmitOptions = {}): Promise<Submission> {
    this.ensureOpen();
    if (typeof workflow !== 'object' || workflow === null || Array.isArray(workflow)) {
      throw new ComfyError('invalid_argument', 'a workflow is a JSON object of nodes (API format)');
    }
    const promptId = options.promptId ?? newUuid();
    this.driver.trackPrompt(promptId, Object.keys(workflow).length);
    const body: Record<string, unknown> = { prompt: workflow, client_id: this.id, prompt_id: promptId };
    if (options.extraData) body['extra_data'] = options.extraData;
    if (options.front) body['front'] = true;
    if (options.partialExecutionTargets) body['partial_execution_targets'] = options.partialExecutionTargets;
    let answer;
    try {
      answer = await this.http.text('POST', 'prompt', { json: body });
    } catch (error) {
      this.driver.promptRejected(promptId);
      throw error;
    }
    const parsed = parseOrText(answer.text);
    const reply = asRecord(parsed);
    if (answer.status === 200 && typeof parsed === 'object') {
      const accepted = typeof reply['prompt_id'] === 'string' ? reply['prompt_id'] : promptId;
      const number = typeof reply['number'] === 'number' ? reply['number'] : undefined;
      const nodeErrors = asRecord(reply['node_errors']);
      this.driver.promptAccepted(accepted, number, nodeErrors);
      return {
        promptId: accepted,
        number: number ?? null,
        nodeErrors: Object.keys(nodeErrors).length > 0 ? nodeErrors : null,
      };
    }
    this.driver.promptRejected(promptId);
    if (answer.status === 400 && reply['error'] !== undefined) {
      const error = asRecord(reply['error']);
      const message = typeof error['message'] === 'string' ? error['message'] : 'the workflow was refused';
      throw new ComfyError('validation', message, { status: 400, body: parsed });
    }
    throw new ComfyError('http', `POST /prompt: HTTP ${answer.status}`, { status: answer.status, body: parsed });
  }

  /**
   * Waits for the one terminal outcome of a prompt submitted through this
   * client and returns its record whatever the outcome. Rejects with
   * `timeout` (a deadline), `closed`, or `invalid_argument` for a prompt
   * this client does not track.
   */
  waitRecord(promptId: string, deadlines: Deadlines = this.deadlines, signal?: AbortSignal): Promise<ExecutionRecord> {
    this.ensureOpen();
    const started = performance.now();
    const known = this.execution(promptId);
    if (!known) {
      return Promise.reject(
        new ComfyError('invalid_argument', `prompt ${promptId} is not tracked by this client (submit it through this client)`),
      );
    }
    if (isTerminal(known)) return Promise.resolve(known);
    return new Promise<ExecutionRecord>((resolve, reject) => {
      let running = known.phase === 'running';
      let lastActivity = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const finish = (error: ComfyError | undefined, record?: ExecutionRecord): void => {
        if (timer !== undefined) clearTimeout(timer);
        off();
        signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(fail);
        if (error) reject(error);
        else if (record) resolve(record);
      };
      const fail = (error: ComfyError): void => finish(error);
      const onAbort = (): void => finish(new ComfyError('timeout', 'the wait was aborted', { cause: signal?.reason }));
      const arm = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        let next: { at: number; kind: 'queue' | 'stall' | 'total'; after: number } | undefined;
        const consider = (at: number, kind: 'queue' | 'stall' | 'total', after: number): void => {
          if (!next || at < next.at) next = { at, kind, after };
        };
        if (deadlines.totalMs !== undefined) consider(started + deadlines.totalMs, 'total', deadlines.totalMs);
        if (!running && deadlines.queueMs !== undefined) consider(started + deadlines.queueMs, 'queue', deadlines.queueMs);
        if (running && deadlines.stallMs !== undefined) consider(lastActivity + deadlines.stallMs, 'stall', deadlines.stallMs);
        const n = next;
        if (!n) return;
        timer = setTimeout(
          () =>
            finish(
              new ComfyError('timeout', `prompt ${promptId}: ${n.kind} deadline of ${n.after} ms passed`, {
                deadline: n.kind,
              }),
            ),
          Math.max(0, n.at - performance.now()),
        );
      };
      const off = this.onAny((event) => {
        if (event.type === 'finished') {
          if (event.record.promptId === promptId) finish(undefined, event.record);
          return;
        }
        if (!('promptId' in event) || event.promptId !== promptId) return;
        lastActivity = performance.now();
        const wasRunning = running;
        running ||= event.type !== 'prompt_queued';
        if (running && (!wasRunning || deadlines.stallMs !== undefined)) arm();
      });
      this.waiters.add(fail);
      if (signal) {
        if (signal.aborted) return onAbort();
        signal.addEventListener('abort', onAbort, { once: true });
      }
      arm();
    });
  }

  /** Waits for a prompt: resolves when it succeeded, rejects with `execution_failed`, `interrupted`, `lost` or `timeout`. */
  async wait(promptId: string, deadlines: Deadlines = this.deadlines, signal?: AbortSignal): Promise<RunResult> {
    return intoResult(await this.waitRecord(promptId, deadlines, signal));
  }

  /** Submits and waits (the client's deadlines unless given). */
  async run(
    workflow: Record<string, unknown>,
    options: SubmitOptions & { deadlines?: Deadlines; signal?: AbortSignal } = {},
  ): Promise<RunResult> {
    const submission = await this.submit(workflow, options);
    return this.wait(submission.promptId, options.deadlines ?? this.deadlines, options.signal);
  }

  // ---- the server's queue and history ----

  /** `GET /queue`, pending in run order. */
  async queue(): Promise<QueueSnapshot> {
    const body = asRecord(await this.http.json('GET', 'queue'));
    const list = (key: string): QueueItem[] => {
      const items = Array.isArray(body[key]) ? (body[key] as unknown[]) : [];
      return items.flatMap((item) => {
        if (!Array.isArray(item) || typeof item[1] !== 'string') return [];
        const extra = asRecord(item[3]);
        return [
          {
            number: typeof item[0] === 'number' ? item[0] : 0,
            promptId: item[1],
            clientId: typeof extra['client_id'] === 'string' ? extra['client_id'] : null,
          },
        ];
      });
    };
    const pending = list('queue_pending').sort(
      (a, b) => a.number - b.number || (a.promptId < b.promptId ? -1 : a.promptId > b.promptId ? 1 : 0),
    );
    return { running: list('queue_running'), pending };
  }

  /** Removes pending prompts from the server's queue. */
  async deleteFromQueue(promptIds: string[]): Promise<void> {
    await this.http.json('POST', 'queue', { json: { delete: promptIds } });
  }

  /** Empties the server's pending queue. */
  async clearQueue(): Promise<void> {
    await this.http.json('POST', 'queue', { json: { clear: true } });
  }

  /** Interrupts the running prompt (only `promptId`, when given). */
  async interrupt(promptId?: string): Promise<void> {
    await this.http.json('POST', 'interrupt', { json: promptId === undefined ? {} : { prompt_id: promptId } });
  }

  /** The server's `/history` entry of a prompt, or null. */
  async serverHistory(promptId: string): Promise<Record<string, unknown> | null> {
    const body = asRecord(await this.http.json('GET', `history/${encodeURIComponent(promptId)}`));
    const entry = body[promptId];
    return entry === undefined ? null : asRecord(entry);
  }

  /** The server's last `maxItems` history entries by prompt id. */
  async serverHistoryList(maxItems = 100): Promise<Record<string, unknown>> {
    return asRecord(await this.http.json('GET', `history?max_items=${maxItems}`));
  }

  /** Deletes entries from (or clears) the server's history. */
  async deleteServerHistory(promptIds: string[] | 'all'): Promise<void> {
    await this.http.json('POST', 'history', { json: promptIds === 'all' ? { clear: true } : { delete: promptIds } });
  }

  // ---- files ----

  /** The `/view` URL of a file (for an `<img src>`). */
  viewUrl(file: FileRef): string {
    const q = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder, type: file.type });
    return this.endpoints.http(`view?${q.toString()}`);
  }

  /** Downloads a file's bytes. */
  async download(file: FileRef): Promise<Blob> {
    const q = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder, type: file.type });
    const response = await this.http.request('GET', `view?${q.toString()}`);
    if (!response.ok) {
      throw new ComfyError('http', `GET /view ${file.filename}: HTTP ${response.status}`, {
        status: response.status,
        body: await response.text().catch(() => ''),
      });
    }
    return response.blob();
  }

  /** Uploads an image to the input folder; resolves with where the server put it. */
  async upload(data: Blob, filename: string, options: UploadOptions = {}): Promise<FileRef> {
    const form = new FormData();
    form.append('image', data, filename);
    form.append('overwrite', options.overwrite ? 'true' : 'false');
    if (options.subfolder !== undefined) form.append('subfolder', options.subfolder);
    form.append('type', options.type ?? 'input');
    const body = asRecord(await this.http.json('POST', 'upload/image', { body: form }));
    if (typeof body['name'] !== 'string') {
      throw new ComfyError('http', 'POST /upload/image: the answer names no file', { body });
    }
    return {
      filename: body['name'],
      subfolder: typeof body['subfolder'] === 'string' ? body['subfolder'] : '',
      type: typeof body['type'] === 'string' ? body['type'] : (options.type ?? 'input'),
    };
  }

  private ensureOpen(): void {
    if (this.driver.isClosed) throw new ComfyError('closed', 'the client was closed');
  }
}

/** True for the four terminal phases. */
export function isTerminal(record: ExecutionRecord): boolean {
  return record.phase === 'succeeded' || record.phase === 'failed' || record.phase === 'interrupted' || record.phase === 'lost';
}

/** A finished record as a result (succeeded) or the matching error. */
export function intoResult(record: ExecutionRecord): RunResult {
  const outcome = record.outcome;
  if (!outcome || outcome.kind === 'succeeded') {
    return { promptId: record.promptId, record, outputs: record.outputs, files: files(record) };
  }
  switch (outcome.kind) {
    case 'failed':
      throw new ComfyError(
        'execution_failed',
        `prompt ${record.promptId} failed in node ${outcome.error.node_id ?? '?'} (${outcome.error.node_type ?? '?'}): ${outcome.error.exception_message.trim()}`,
        { record },
      );
    case 'interrupted':
      throw new ComfyError('interrupted', `prompt ${record.promptId} was interrupted`, { record });
    case 'lost':
      throw new ComfyError('lost', `prompt ${record.promptId} was lost: ${outcome.reason}`, { record });
  }
}
