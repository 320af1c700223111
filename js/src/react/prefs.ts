/**
 * Connection preferences persisted across reloads (zustand's `persist`
 * over `localStorage`): server URL, auth, backoff and the debug toggle.
 * Credentials stored in `localStorage` are readable by any script of the
 * origin; leave `auth` empty where that matters and use a proxy session.
 * @module
 */
import { create } from 'zustand';
import { createJSONStorage, persist } from 'zustand/middleware';

/** What is persisted. */
export interface ConnectionPrefs {
  /** Server URL (relative URLs resolve against the page). */
  url: string;
  /** HTTP Basic credentials for a proxy, if any. */
  auth: { username: string; password: string } | null;
  /** A `token` query parameter for the socket (cloud proxies), if any. */
  token: string | null;
  /** Reconnect backoff (ms). */
  backoff: { initialMs: number; maxMs: number };
  /** Log the socket traffic to the console. */
  debug: boolean;
}

/** The preferences and their setters. */
export interface ConnectionPrefsStore extends ConnectionPrefs {
  /** Changes some preferences (the provider reconnects when URL, auth, token or backoff change). */
  setPrefs: (patch: Partial<ConnectionPrefs>) => void;
  /** Back to the defaults. */
  reset: () => void;
}

/** The defaults: the page's own origin, no auth, 1 s to 30 s backoff, no debug log. */
export const DEFAULT_PREFS: ConnectionPrefs = {
  url: '/',
  auth: null,
  token: null,
  backoff: { initialMs: 1000, maxMs: 30_000 },
  debug: false,
};

/** The storage key in `localStorage`. */
export const PREFS_KEY = 'comfywire.connection';

/** The persisted preferences hook (`useConnectionPrefs((s) => s.url)`). */
export const useConnectionPrefs = create<ConnectionPrefsStore>()(
  persist(
    (set) => ({
      ...DEFAULT_PREFS,
      setPrefs: (patch) => set(patch),
      reset: () => set(DEFAULT_PREFS),
    }),
    {
      name: PREFS_KEY,
      version: 1,
      storage: createJSONStorage(() => localStorage),
      partialize: ({ url, auth, token, backoff, debug }) => ({ url, auth, token, backoff, debug }),
    },
  ),
);
