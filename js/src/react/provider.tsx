/**
 * `WebSocketProvider`: owns one `ComfyClient` for its subtree, built from
 * the persisted connection preferences (or props), closed on unmount and
 * rebuilt when the URL, auth, token or backoff change.
 * @module
 */
import { createContext, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { ComfyClient, type ComfyClientOptions } from '../client.js';
import { ComfyStore } from './state.js';
import { useConnectionPrefs } from './prefs.js';

/** The store of the nearest provider. */
export const StoreContext = createContext<ComfyStore | null>(null);

/** Props of `WebSocketProvider`. */
export interface WebSocketProviderProps {
  /** The app. */
  children?: ReactNode;
  /** Server URL; overrides the persisted preference. */
  url?: string;
  /** Any other client option (session tunables, `WebSocket`, `fetch`, lifecycle...); the preferences fill the rest. */
  options?: Omit<Partial<ComfyClientOptions>, 'url'>;
  /** Notification window of the hooks (ms, default 16: the core's progress window). */
  renderWindowMs?: number;
}

/** Provides a client and its state to the hooks below it. */
export function WebSocketProvider({ children, url, options, renderWindowMs }: WebSocketProviderProps): ReactNode {
  const prefs = useConnectionPrefs();
  const [store] = useState(() => new ComfyStore(renderWindowMs));
  const effectiveUrl = url ?? prefs.url;
  const key = JSON.stringify([effectiveUrl, prefs.auth, prefs.token, prefs.backoff]);
  // Options are read when the client is (re)built; a new object each render rebuilds nothing.
  const optionsRef = useRef(options);
  optionsRef.current = options;

  useEffect(() => {
    let cancelled = false;
    let client: ComfyClient | undefined;
    const given = optionsRef.current;
    const session = { ...(given?.session ?? {}), backoff: { ...prefs.backoff, ...(given?.session?.backoff ?? {}) } };
    const config: ComfyClientOptions = {
      lifecycle: { networkChanges: true },
      ...given,
      url: effectiveUrl,
      session,
      debug: prefs.debug,
    };
    if (prefs.auth) config.auth = prefs.auth;
    if (prefs.token) config.token = prefs.token;
    ComfyClient.create(config).then(
      (c) => {
        if (cancelled) {
          c.close();
          return;
        }
        client = c;
        store.attach(c);
      },
      (error: unknown) => {
        if (!cancelled) store.failed(error instanceof Error ? error : new Error(String(error)));
      },
    );
    return () => {
      cancelled = true;
      store.detach();
      client?.close();
    };
    // The key covers every preference that needs a new client; debug is applied live below.
  }, [key, store]);

  const client = useSyncExternalStore(store.subscribe, () => store.getSnapshot().client);
  useEffect(() => {
    client?.setDebug(prefs.debug);
  }, [client, prefs.debug]);

  return <StoreContext.Provider value={store}>{children}</StoreContext.Provider>;
}
