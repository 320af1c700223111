import { useGenerationProgress, useWebSocket } from 'comfywire/react';
import { files } from 'comfywire';
import type { ReactNode } from 'react';

/** The current prompt: node, steps, node and prompt percentages, ETA, the live preview, then its output images. */
export function ProgressPanel(): ReactNode {
  const p = useGenerationProgress();
  const { client } = useWebSocket();
  if (!p) return <div className="panel">No run yet.</div>;
  const record = p.phase === 'succeeded' || p.phase === 'failed' ? client?.execution(p.promptId) : undefined;
  const outputs = record ? files(record) : [];
  return (
    <div className="panel" data-testid="progress" data-prompt={p.promptId} data-phase={p.phase}>
      <div>
        <b data-testid="phase">{p.phase}</b> · node {p.node ?? '–'} · step{' '}
        <span data-testid="steps">
          {p.step}/{p.maxSteps}
        </span>
      </div>
      <progress max={100} value={p.nodePercent} /> node {Math.round(p.nodePercent)} %
      <br />
      <progress max={100} value={p.promptPercent} data-testid="prompt-progress" /> prompt {Math.round(p.promptPercent)} %
      {p.etaMs !== null && <span> · ETA {(p.etaMs / 1000).toFixed(1)} s</span>}
      <div className="images">
        {p.preview && p.phase === 'running' && <img data-testid="preview" src={p.preview.url} alt="live preview" width={256} />}
        {client &&
          outputs.map((f) => (
            <img key={`${f.subfolder}/${f.filename}`} data-testid="output-image" src={client.viewUrl(f)} alt={f.filename} width={256} />
          ))}
      </div>
    </div>
  );
}
