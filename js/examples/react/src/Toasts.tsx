import { useComfyEvent } from 'comfywire/react';
import { useCallback, useState, type ReactNode } from 'react';

interface Toast {
  id: number;
  text: string;
}

let next = 0;

/** Error toasts: lost connections, failed prompts, failed reconciliation requests. */
export function Toasts(): ReactNode {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((text: string) => {
    const id = ++next;
    setToasts((t) => [...t.slice(-4), { id, text }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), 6000);
  }, []);
  useComfyEvent('connection', (e) => {
    if (e.status.state === 'reconnecting' && e.status.lastError) push(`Connection lost: ${e.status.lastError.message}`);
  });
  useComfyEvent('finished', (e) => {
    const o = e.record.outcome;
    if (o?.kind === 'failed') push(`Prompt failed: ${o.error.exception_message.trim()}`);
    if (o?.kind === 'lost') push(`Prompt lost: ${o.reason}`);
  });
  useComfyEvent('http_failed', (e) => push(`Request failed: ${e.error}`));
  return (
    <div className="toasts" data-testid="toasts">
      {toasts.map((t) => (
        <div key={t.id} className="toast">
          {t.text}
          <button type="button" onClick={() => setToasts((all) => all.filter((x) => x.id !== t.id))}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
