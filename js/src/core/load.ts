/**
 * Loads the WebAssembly core once per page (or Node process).
 * @module
 */
import init, { initSync, WasmSession } from './pkg/comfywire_wasm.js';

/** Where the `.wasm` comes from: a URL, a `Response`, bytes or a compiled module. */
export type WasmSource = URL | string | Response | BufferSource | WebAssembly.Module;

let ready: Promise<void> | undefined;

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

/**
 * Instantiates the core. Browsers (and bundlers such as vite) fetch
 * `comfywire_wasm_bg.wasm` next to the glue; Node reads it from disk. Pass
 * `source` to load it from elsewhere. Safe to call many times.
 */
export function loadCore(source?: WasmSource): Promise<void> {
  ready ??= (async () => {
    if (source !== undefined) {
      await init({ module_or_path: source });
      return;
    }
    const local = new URL('./pkg/comfywire_wasm_bg.wasm', import.meta.url).href;
    if (isNode() && local.startsWith('file:')) {
      // A computed specifier keeps bundlers from pulling `fs` into a browser build.
      const fsName = 'node:fs/promises';
      const urlName = 'node:url';
      const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs/promises');
      const url = (await import(/* @vite-ignore */ urlName)) as typeof import('node:url');
      // A string, not a URL object: test DOMs (jsdom) replace the global URL class.
      const bytes = await fs.readFile(url.fileURLToPath(local));
      initSync({ module: bytes });
      return;
    }
    await init();
  })();
  ready.catch(() => {
    ready = undefined;
  });
  return ready;
}

export { WasmSession };
