import { useConnectionPrefs } from 'comfywire/react';
import { useState, type ReactNode } from 'react';

/** Server URL, backoff and the debug toggle, saved across reloads. */
export function Settings(): ReactNode {
  const prefs = useConnectionPrefs();
  const [url, setUrl] = useState(prefs.url);
  return (
    <div className="panel">
      <h2>Connection</h2>
      <label>
        Server URL <input value={url} onChange={(e) => setUrl(e.target.value)} aria-label="server url" />
      </label>
      <button type="button" onClick={() => prefs.setPrefs({ url })}>
        Connect
      </button>
      <label>
        <input
          type="checkbox"
          checked={prefs.debug}
          onChange={(e) => prefs.setPrefs({ debug: e.target.checked })}
          data-testid="debug"
        />{' '}
        Log traffic to the console
      </label>
      <div>
        Backoff {prefs.backoff.initialMs} ms → {prefs.backoff.maxMs} ms
      </div>
    </div>
  );
}
