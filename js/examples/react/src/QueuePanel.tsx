import { useExecutionQueue } from 'comfywire/react';
import { useState, type ReactNode } from 'react';
import { DEFAULT_WORKFLOW } from './workflow.js';

/** The workflow editor and the server's queue with remove / clear / interrupt. */
export function QueuePanel(): ReactNode {
  const q = useExecutionQueue();
  const [text, setText] = useState(() => JSON.stringify(DEFAULT_WORKFLOW, null, 1));
  const [error, setError] = useState<string | null>(null);
  const run = (): void => {
    setError(null);
    let graph: Record<string, unknown>;
    try {
      graph = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      setError(`not JSON: ${(e as Error).message}`);
      return;
    }
    // `mock_scenario` tells comfywire-mock which recording to replay; ComfyUI ignores it.
    q.add(graph, { extraData: { mock_scenario: 'reconnect_midrun' } }).catch((e: unknown) => setError((e as Error).message));
  };
  return (
    <div className="panel">
      <h2>Queue</h2>
      <textarea value={text} onChange={(e) => setText(e.target.value)} rows={6} aria-label="workflow" />
      <div>
        <button type="button" onClick={run} data-testid="run">
          Run
        </button>
        <button type="button" onClick={() => void q.clear()}>
          Clear pending
        </button>
        <button type="button" onClick={() => void q.interrupt()}>
          Interrupt
        </button>
      </div>
      {error && <div className="error">{error}</div>}
      <ul data-testid="queue">
        {q.running.map((i) => (
          <li key={i.promptId}>
            ▶ {i.promptId.slice(0, 8)} (#{i.number})
          </li>
        ))}
        {q.pending.map((i) => (
          <li key={i.promptId}>
            ⏸ {i.promptId.slice(0, 8)} (#{i.number}){' '}
            <button type="button" onClick={() => void q.remove(i.promptId)}>
              remove
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}
