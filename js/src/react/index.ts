/**
 * React bindings of comfywire: `WebSocketProvider` and the hooks
 * `useWebSocket`, `useComfyEvent`, `useWebSocketStatus`,
 * `useGenerationProgress`, `useExecutionQueue`, `useExecutionHistory`,
 * plus the persisted `useConnectionPrefs`.
 * @module
 */
export { WebSocketProvider, StoreContext } from './provider.js';
export type { WebSocketProviderProps } from './provider.js';
export {
  useComfyEvent,
  useExecutionHistory,
  useExecutionQueue,
  useGenerationProgress,
  useWebSocket,
  useWebSocketStatus,
} from './hooks.js';
export type { ExecutionQueue, WebSocketApi, WebSocketStatus } from './hooks.js';
export { ComfyStore } from './state.js';
export type { ComfyState, GenerationProgress, QueueState } from './state.js';
export { DEFAULT_PREFS, PREFS_KEY, useConnectionPrefs } from './prefs.js';
export type { ConnectionPrefs, ConnectionPrefsStore } from './prefs.js';
