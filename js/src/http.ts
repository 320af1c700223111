/**
 * URLs of one server and a small `fetch` wrapper with timeouts and
 * typed errors.
 * @module
 */
import { ComfyError } from './errors.js';

/** Credentials for HTTP Basic authentication (a proxy in front of ComfyUI). */
export interface BasicAuth {
  /** User name. */
  username: string;
  /** Password. */
  password: string;
}

/** The HTTP base and WebSocket URL of one server. */
export class Endpoints {
  /** The normalised base URL, ending in `/`. */
  readonly base: string;
  private readonly token: string | undefined;

  /** From `http(s)://host:port[/prefix]` (`ws(s)://` accepted); relative URLs resolve against `location`. */
  constructor(url: string, token?: string) {
    let parsed: URL;
    try {
      const origin = (globalThis as { location?: { href: string } }).location?.href;
      parsed = origin === undefined ? new URL(url) : new URL(url, origin);
    } catch (cause) {
      throw new ComfyError('invalid_argument', `url "${url}" is not a URL`, { cause });
    }
    const scheme = { 'http:': 'http:', 'ws:': 'http:', 'https:': 'https:', 'wss:': 'https:' }[parsed.protocol];
    if (scheme === undefined) {
      throw new ComfyError('invalid_argument', `url scheme "${parsed.protocol}" is not http(s)`);
    }
    parsed = new URL(parsed.href.replace(/^[a-z]+:/, scheme));
    parsed.search = '';
    parsed.hash = '';
    parsed.pathname = parsed.pathname.replace(/\/+$/, '') + '/';
    this.base = parsed.href;
    this.token = token;
  }

  /** `base + path` (query allowed). */
  http(path: string): string {
    return this.base + path.replace(/^\/+/, '');
  }

  /** The socket URL for a client id. */
  websocket(clientId: string | null): string {
    const url = new URL(this.base.replace(/^http/, 'ws') + 'ws');
    if (clientId !== null) url.searchParams.set('clientId', clientId);
    if (this.token !== undefined) url.searchParams.set('token', this.token);
    return url.href;
  }
}

/** An HTTP answer: status and body text. */
export interface HttpAnswer {
  /** HTTP status. */
  status: number;
  /** Body as text. */
  text: string;
}

/** `fetch` with a base URL, extra headers, a timeout and typed errors. */
export class HttpApi {
  /** The server's URLs. */
  readonly endpoints: Endpoints;
  private readonly fetchFn: typeof fetch;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  /** An API for `endpoints`; `fetchFn` defaults to the global `fetch`. */
  constructor(
    endpoints: Endpoints,
    options: { fetch?: typeof fetch; headers?: Record<string, string>; auth?: BasicAuth; timeoutMs?: number } = {},
  ) {
    this.endpoints = endpoints;
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.headers = { ...(options.headers ?? {}) };
    if (options.auth) {
      this.headers['Authorization'] = `Basic ${btoa(`${options.auth.username}:${options.auth.password}`)}`;
    }
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Any request; rejects with `network` when no answer arrives. */
  async request(
    method: string,
    path: string,
    init: { body?: BodyInit; json?: unknown; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers };
    let body = init.body;
    if (init.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const timeout = AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    const url = this.endpoints.http(path);
    try {
      return await this.fetchFn(url, { method, headers, body: body ?? null, signal });
    } catch (cause) {
      throw new ComfyError('network', `${method} ${path}: ${describe(cause)}`, { cause });
    }
  }

  /** Status and text of a request. */
  async text(
    method: string,
    path: string,
    init: { json?: unknown; body?: BodyInit; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<HttpAnswer> {
    const response = await this.request(method, path, init);
    try {
      return { status: response.status, text: await response.text() };
    } catch (cause) {
      throw new ComfyError('network', `${method} ${path}: body: ${describe(cause)}`, { cause });
    }
  }

  /** A JSON answer of a 2xx request; `http` error otherwise. */
  async json(
    method: string,
    path: string,
    init: { json?: unknown; body?: BodyInit; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<unknown> {
    const answer = await this.text(method, path, init);
    if (answer.status < 200 || answer.status > 299) {
      throw new ComfyError('http', `${method} ${path}: HTTP ${answer.status}`, {
        status: answer.status,
        body: parseOrText(answer.text),
      });
    }
    if (answer.text.trim() === '') return {};
    try {
      return JSON.parse(answer.text) as unknown;
    } catch (cause) {
      throw new ComfyError('http', `${method} ${path}: answer is not JSON`, {
        status: answer.status,
        body: answer.text,
        cause,
      });
    }
  }
}

/** JSON when the text is JSON, else the text. */
export function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A short description of anything thrown. */
export function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}
