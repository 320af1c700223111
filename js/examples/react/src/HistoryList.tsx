import { useVirtualizer } from '@tanstack/react-virtual';
import { useExecutionHistory } from 'comfywire/react';
import { useRef, type ReactNode } from 'react';

/** The last 100 executions, newest first, virtualised. */
export function HistoryList(): ReactNode {
  const history = useExecutionHistory();
  const parent = useRef<HTMLDivElement>(null);
  const rows = useVirtualizer({ count: history.length, getScrollElement: () => parent.current, estimateSize: () => 28 });
  return (
    <div className="panel">
      <h2>History ({history.length})</h2>
      <div ref={parent} className="history" data-testid="history">
        <div style={{ height: rows.getTotalSize(), position: 'relative' }}>
          {rows.getVirtualItems().map((row) => {
            const r = history[row.index]!;
            const seconds = r.startedAt !== null && r.finishedAt !== null ? ((r.finishedAt - r.startedAt) / 1000).toFixed(1) : '–';
            return (
              <div
                key={r.promptId}
                className={`row ${r.phase}`}
                data-testid="history-row"
                data-prompt={r.promptId}
                data-phase={r.phase}
                style={{ position: 'absolute', top: 0, transform: `translateY(${row.start}px)`, height: row.size }}
              >
                {r.phase} · {r.promptId.slice(0, 8)} · {seconds} s{r.hadGap ? ' · recovered after a gap' : ''}
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
