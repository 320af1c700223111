/**
 * The WebSocket the driver uses: the browser's (or Node >= 22's) global
 * `WebSocket`, or the `ws` package on Node 20.
 * @module
 */

/** What the driver needs of a WebSocket (the WHATWG interface, which `ws` implements too). */
export interface SocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** Set to `'arraybuffer'` by the driver. */
  binaryType: string;
  /** Sends a text frame. */
  send(data: string): void;
  /** Closes (browsers allow code 1000 or 3000-4999). */
  close(code?: number, reason?: string): void;
  /** Opened. */
  onopen: ((event: unknown) => void) | null;
  /** A frame: `data` is a string or an `ArrayBuffer`. */
  onmessage: ((event: { data: unknown }) => void) | null;
  /** Closed (after a failure too). */
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  /** Failed (a close follows). */
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor. */
export type SocketConstructor = new (url: string) => SocketLike;

/**
 * The given constructor, else the global `WebSocket`, else the `ws`
 * package (Node 20 has no global WebSocket).
 */
export async function resolveWebSocket(given?: SocketConstructor): Promise<SocketConstructor> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (global) return global;
  // A computed specifier keeps bundlers from resolving `ws` for browsers.
  const name = 'ws';
  try {
    const module = (await import(/* @vite-ignore */ name)) as { default?: unknown; WebSocket?: unknown };
    return (module.WebSocket ?? module.default) as SocketConstructor;
  } catch (cause) {
    throw new Error('no WebSocket: this runtime has no global WebSocket; install the `ws` package', { cause });
  }
}
