/**
 * comfywire for browsers and Node: a ComfyUI client whose protocol logic is
 * comfywire's sans-IO Rust core compiled to WebAssembly.
 *
 * ```ts
 * const client = await ComfyClient.create({ url: 'http://127.0.0.1:8188' });
 * const off = client.on('progress', (e) => console.log(e.node, e.value, e.max));
 * const result = await client.run(workflow, { deadlines: { totalMs: 600_000 } });
 * off();
 * client.close();
 * ```
 * @module
 */
export { ComfyClient, intoResult, isTerminal } from './client.js';
export type { ComfyClientOptions, Deadlines, LifecycleOptions, RunResult, Submission, SubmitOptions, UploadOptions } from './client.js';
export { loadCore, WasmSession } from './core/load.js';
export type { WasmSource } from './core/load.js';
export { SessionDriver } from './driver.js';
export type { DriverOptions, DriverStats, TrafficEntry } from './driver.js';
export { EventHub } from './emitter.js';
export type { Listener } from './emitter.js';
export { ComfyError } from './errors.js';
export type { ComfyErrorCode } from './errors.js';
export { Endpoints, HttpApi } from './http.js';
export type { BasicAuth, HttpAnswer } from './http.js';
export { files } from './outputs.js';
export { resolveWebSocket } from './transport.js';
export type { SocketConstructor, SocketLike } from './transport.js';
export type * from './types.js';
