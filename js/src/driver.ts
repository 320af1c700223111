/**
 * The driver: the browser's event loop performing the WebAssembly core's
 * commands. It owns the one `WasmSession`, the socket, one timer and the
 * session's HTTP requests, and is the only code that reads the clock.
 *
 * Liveness: browsers cannot send WebSocket pings. When the core asks for a
 * ping the driver answers it itself if a frame arrived within the last ping
 * interval; on an idle socket it probes `GET /prompt` over HTTP (bounded by
 * the pong timeout) and reports a pong only if the probe succeeds while the
 * socket is still open. A failed probe lets the core's heartbeat timeout
 * replace the socket. A running prompt whose socket goes silent is caught
 * by the core's deaf-socket watchdog as on every other driver.
 * @module
 */
import { WasmSession } from './core/load.js';
import { describe, type HttpApi } from './http.js';
import type { SocketConstructor, SocketLike } from './transport.js';
import type {
  ComfyEvent,
  ConnectionStatus,
  CoreStats,
  ExecutionRecord,
  SessionCommand,
  SessionOptions,
  SessionRequest,
} from './types.js';

/** One line of the debug traffic log. */
export interface TrafficEntry {
  /** `in` (frame received), `out` (frame sent), `http` (request of the core), `liveness`, `socket`. */
  kind: 'in' | 'out' | 'http' | 'liveness' | 'socket';
  /** Description (text frames in full, binary frames by size). */
  text: string;
}

/** How a driver is built. */
export interface DriverOptions {
  /** The HTTP API of the server (its endpoints give the socket URL). */
  http: HttpApi;
  /** The core's tunables. */
  session: SessionOptions;
  /** The `clientId`, or null to adopt the server's sid. */
  clientId: string | null;
  /** The WebSocket constructor. */
  WebSocket: SocketConstructor;
  /** The clock (ms), `performance.now` by default. */
  now?: () => number;
  /** Opening a socket may take this long (ms, default 10000). */
  connectTimeoutMs?: number;
  /** Receives every batch of events, in order. */
  onEvents: (events: ComfyEvent[]) => void;
  /** Receives the traffic log when set (the debug toggle). */
  onTraffic?: (entry: TrafficEntry) => void;
}

/** Counters of the driver itself. */
export interface DriverStats {
  /** HTTP liveness probes made on idle sockets. */
  livenessProbes: number;
  /** Liveness checks answered by a recent frame. */
  livenessByFrame: number;
  /** Sockets opened. */
  socketsOpened: number;
}

const CLOSE_REASON_BYTES = 123;

/** An `ArrayBuffer` from any realm (a test DOM's global differs from the socket library's). */
function isArrayBuffer(data: unknown): data is ArrayBuffer {
  return data instanceof ArrayBuffer || Object.prototype.toString.call(data) === '[object ArrayBuffer]';
}

/** Runs a `WasmSession` on the host's WebSocket, `fetch` and timers. */
export class SessionDriver {
  /** The current status (kept from the core's connection events). */
  status: ConnectionStatus;
  /** Driver counters. */
  readonly stats: DriverStats = { livenessProbes: 0, livenessByFrame: 0, socketsOpened: 0 };
  /** The traffic log sink; set or clear it at any time. */
  onTraffic: ((entry: TrafficEntry) => void) | undefined;

  private readonly session: WasmSession;
  private readonly options: DriverOptions;
  private readonly now: () => number;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  private ws: SocketLike | undefined;
  private wsOpen = false;
  private generation = 0;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedAt: number | undefined;
  private pumping = false;
  private pumpQueued = false;
  private microtaskQueued = false;
  private probing = false;
  private closed = false;
  private final: { stats: CoreStats; history: ExecutionRecord[] } | undefined;

  /** A driver that has not started; call `start`. Throws on bad session options. */
  constructor(options: DriverOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    this.onTraffic = options.onTraffic;
    this.pingIntervalMs = options.session.pingIntervalMs ?? 30_000;
    this.pongTimeoutMs = options.session.pongTimeoutMs ?? 10_000;
    const sessionOptions: Record<string, unknown> = { ...options.session };
    if (options.clientId !== null) sessionOptions['clientId'] = options.clientId;
    this.session = new WasmSession(sessionOptions, this.now());
    this.status = this.session.status() as ConnectionStatus;
  }

  // ---- what the client asks ----

  /** Starts connecting. */
  start(): void {
    this.session.connect(this.now());
    this.pump();
  }

  /** The client id in use. */
  clientId(): string | null {
    return this.session.clientId() ?? null;
  }

  /** Reserves a prompt id before its `POST /prompt`. */
  trackPrompt(promptId: string, graphNodes: number | undefined): void {
    this.session.trackPrompt(promptId, graphNodes, this.now());
    this.pump();
  }

  /** `POST /prompt` answered 200. */
  promptAccepted(promptId: string, number: number | undefined, nodeErrors: unknown): void {
    this.session.promptAccepted(promptId, number, JSON.stringify(nodeErrors ?? {}), this.now());
    this.pump();
  }

  /** `POST /prompt` failed: nothing was queued. */
  promptRejected(promptId: string): void {
    this.session.promptRejected(promptId, this.now());
    this.pump();
  }

  /** Skips the backoff wait. */
  retryNow(): void {
    this.session.retryNow(this.now());
    this.pump();
  }

  /** Closes the socket and stops retrying until `resume`. */
  pause(): void {
    this.session.pause(this.now());
    this.pump();
  }

  /** Reconnects after `pause`. */
  resume(): void {
    this.session.resume(this.now());
    this.pump();
  }

  /** The network changed: check the socket now, or retry now. */
  networkChanged(): void {
    this.session.networkChanged(this.now());
    this.pump();
  }

  /** Reconciles every in-flight prompt of ours now. */
  reconcile(): void {
    this.session.reconcile(this.now());
    this.pump();
  }

  /** The record of a prompt, in flight or finished (after `close`, finished ones only). */
  execution(promptId: string): ExecutionRecord | undefined {
    if (this.final) return this.final.history.find((r) => r.promptId === promptId);
    return this.session.execution(promptId) as ExecutionRecord | undefined;
  }

  /** The ring of finished executions, oldest first. */
  history(): ExecutionRecord[] {
    if (this.final) return [...this.final.history];
    return this.session.history() as ExecutionRecord[];
  }

  /** Core counters. */
  coreStats(): CoreStats {
    if (this.final) return { ...this.final.stats };
    return this.session.stats() as CoreStats;
  }

  /** True once `close` ran. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the socket for good, stops every timer and frees the core. */
  close(): void {
    if (this.closed) return;
    this.session.close(this.now());
    this.pump();
    this.closed = true;
    this.dropSocket(1000, 'client closing');
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    // The core's memory is released now; what it knew stays readable.
    this.final = { stats: this.session.stats() as CoreStats, history: this.session.history() as ExecutionRecord[] };
    this.session.free();
  }

  // ---- the loop ----

  /** Performs commands and delivers events until both queues are empty, then re-arms the timer. */
  private pump(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpQueued = true;
      return;
    }
    this.pumping = true;
    try {
      for (;;) {
        this.pumpQueued = false;
        const commands = this.session.drainCommands() as SessionCommand[];
        for (const command of commands) this.perform(command);
        const events = this.session.drainEvents() as ComfyEvent[];
        if (events.length > 0) this.deliver(events);
        if (commands.length === 0 && events.length === 0 && !this.pumpQueued) break;
        if (this.closed) return;
      }
      this.arm();
    } finally {
      this.pumping = false;
    }
  }

  /** A pump after the current task's other frames (Node's `ws` delivers a chunk's frames in one go). */
  private schedulePump(): void {
    if (this.microtaskQueued) return;
    this.microtaskQueued = true;
    queueMicrotask(() => {
      this.microtaskQueued = false;
      this.pump();
    });
  }

  private deliver(events: ComfyEvent[]): void {
    for (const event of events) {
      if (event.type === 'connection') this.status = event.status;
    }
    this.options.onEvents(events);
  }

  private arm(): void {
    const at = this.session.nextTimeout();
    if (at === this.armedAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = at;
    if (at === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.armedAt = undefined;
        if (this.closed) return;
        this.session.handleTimeout(this.now());
        this.pump();
      },
      Math.max(0, Math.ceil(at - this.now())),
    );
  }

  private perform(command: SessionCommand): void {
    switch (command.type) {
      case 'connect':
        this.openSocket(command.clientId);
        break;
      case 'send':
        this.trace('out', command.text);
        if (this.ws && this.wsOpen) {
          try {
            this.ws.send(command.text);
          } catch (error) {
            this.lost(undefined, `send failed: ${describe(error)}`);
          }
        }
        break;
      case 'ping':
        this.checkLiveness();
        break;
      case 'close':
        this.dropSocket(command.code, command.reason);
        break;
      case 'http':
        void this.request(command.request);
        break;
    }
  }

  // ---- the socket ----

  private openSocket(clientId: string | null): void {
    this.dropSocket(1000, 'replaced');
    const generation = ++this.generation;
    const url = this.options.http.endpoints.websocket(clientId);
    this.trace('socket', `connecting ${url.replace(/token=[^&]*/, 'token=…')}`);
    let ws: SocketLike;
    try {
      ws = new this.options.WebSocket(url);
    } catch (error) {
      // A malformed URL throws synchronously: report it as a failed attempt.
      queueMicrotask(() => this.connectFailed(generation, describe(error)));
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.wsOpen = false;
    this.connectTimer = setTimeout(() => {
      this.connectFailed(generation, `no answer within ${this.options.connectTimeoutMs ?? 10_000} ms`);
    }, this.options.connectTimeoutMs ?? 10_000);
    ws.onopen = () => {
      if (generation !== this.generation || this.closed) return;
      this.clearConnectTimer();
      this.wsOpen = true;
      this.stats.socketsOpened++;
      this.trace('socket', 'open');
      this.session.handleConnected(this.now());
      this.pump();
    };
    ws.onmessage = (event) => {
      if (generation !== this.generation || this.closed) return;
      const data = event.data;
      const now = this.now();
      if (typeof data === 'string') {
        if (this.onTraffic) this.trace('in', data);
        this.session.handleText(data, now);
      } else if (isArrayBuffer(data)) {
        if (this.onTraffic) this.trace('in', `binary frame, ${data.byteLength} bytes`);
        this.session.handleBinary(new Uint8Array(data), now);
      } else if (ArrayBuffer.isView(data)) {
        this.session.handleBinary(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), now);
      }
      this.schedulePump();
    };
    ws.onclose = (event) => {
      if (generation !== this.generation || this.closed) return;
      const reason = `socket closed (${event.code}${event.reason ? ` ${event.reason}` : ''})`;
      if (this.wsOpen) this.lost(event.code, reason);
      else this.connectFailed(generation, reason);
    };
    ws.onerror = () => {
      // A close event always follows; it carries what is known.
    };
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== undefined) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
  }

  private connectFailed(generation: number, message: string): void {
    if (generation !== this.generation || this.closed) return;
    this.dropSocket(1000, 'connect failed');
    this.trace('socket', `connect failed: ${message}`);
    this.session.handleConnectFailed(message, this.now());
    this.pump();
  }

  private lost(code: number | undefined, message: string): void {
    this.ws = undefined;
    this.wsOpen = false;
    this.trace('socket', `lost: ${message}`);
    this.session.handleDisconnected(code, message, this.now());
    this.pump();
  }

  /** Forgets the current socket (its late events are ignored) and closes it. */
  private dropSocket(code: number, reason: string): void {
    this.clearConnectTimer();
    const ws = this.ws;
    this.ws = undefined;
    this.wsOpen = false;
    if (!ws) return;
    this.generation++;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    // Kept as a no-op: `ws` (Node) raises an error event when a connecting
    // socket is closed, and an EventEmitter error without a listener throws.
    ws.onerror = () => undefined;
    // Browsers accept only 1000 and 3000-4999 from scripts.
    const allowed = code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
    const encoder = new TextEncoder();
    let short = reason;
    while (encoder.encode(short).length > CLOSE_REASON_BYTES) short = short.slice(0, -1);
    try {
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(allowed, short);
    } catch {
      // Closing an already failed socket may throw in some runtimes; it is gone either way.
    }
    this.trace('socket', `closed by us (${code} ${reason})`);
  }

  // ---- liveness ----

  private checkLiveness(): void {
    const now = this.now();
    const last = this.session.lastFrameAt();
    if (this.wsOpen && last !== undefined && now - last < this.pingIntervalMs) {
      this.stats.livenessByFrame++;
      this.trace('liveness', `frame ${Math.round(now - last)} ms ago`);
      this.session.handlePong(now);
      this.pumpQueued = true;
      return;
    }
    if (this.probing || !this.wsOpen) return;
    this.probing = true;
    this.stats.livenessProbes++;
    const generation = this.generation;
    this.trace('liveness', 'idle socket: probing GET /prompt');
    void this.options.http
      .text('GET', 'prompt', { timeoutMs: this.pongTimeoutMs })
      .then(
        (answer) => answer.status >= 200 && answer.status < 300,
        () => false,
      )
      .then((ok) => {
        this.probing = false;
        if (this.closed) return;
        this.trace('liveness', ok ? 'probe answered' : 'probe failed');
        if (ok && generation === this.generation && this.wsOpen) {
          this.session.handlePong(this.now());
          this.pump();
        }
      });
  }

  // ---- HTTP for the core ----

  private async request(request: SessionRequest): Promise<void> {
    const path = request.kind === 'history' ? `history/${encodeURIComponent(request.promptId)}` : 'queue';
    this.trace('http', `GET /${path}`);
    let status = 0;
    let text = '';
    let failure: string | undefined;
    try {
      const answer = await this.options.http.text('GET', path);
      status = answer.status;
      text = answer.text;
      if (status < 200 || status > 299) failure = `HTTP ${status}`;
    } catch (error) {
      failure = describe(error);
    }
    if (this.closed) return;
    const now = this.now();
    if (failure !== undefined) {
      this.session.handleHttpFailed(
        request.kind,
        request.kind === 'history' ? request.promptId : undefined,
        failure,
        now,
      );
    } else if (request.kind === 'history') {
      this.session.handleHistory(request.promptId, text, now);
    } else {
      this.session.handleQueue(text, now);
    }
    this.pump();
  }

  private trace(kind: TrafficEntry['kind'], text: string): void {
    this.onTraffic?.({ kind, text });
  }
}
