import { useWebSocketStatus } from 'comfywire/react';
import type { ReactNode } from 'react';

const COLOURS: Record<string, string> = {
  connected: '#2e9d4f',
  connecting: '#d9a400',
  reconnecting: '#e07b00',
  polling: '#8a5cd0',
  paused: '#777',
  idle: '#777',
  closed: '#c0392b',
};

/** A coloured dot, the state, the retry countdown and "Retry now". */
export function ConnectionIndicator(): ReactNode {
  const { state, attempt, secondsToRetry, lastError, retryNow } = useWebSocketStatus();
  const waiting = state === 'reconnecting' || state === 'polling';
  return (
    <div className="indicator" data-testid="connection" data-state={state} title={lastError?.message ?? ''}>
      <span className="dot" style={{ background: COLOURS[state] ?? '#777' }} />
      <span data-testid="connection-state">{state}</span>
      {waiting && secondsToRetry !== null && (
        <span data-testid="countdown">
          {' '}
          attempt {attempt} in {secondsToRetry} s
        </span>
      )}
      {waiting && (
        <button type="button" onClick={retryNow} data-testid="retry-now">
          Retry now
        </button>
      )}
    </div>
  );
}
