import { WebSocketProvider } from 'comfywire/react';
import type { ReactNode } from 'react';
import { ConnectionIndicator } from './ConnectionIndicator.js';
import { HistoryList } from './HistoryList.js';
import { ProgressPanel } from './ProgressPanel.js';
import { QueuePanel } from './QueuePanel.js';
import { Settings } from './Settings.js';
import { Toasts } from './Toasts.js';

/** The whole page. `?url=` overrides the saved server URL. */
export function App(): ReactNode {
  const url = new URLSearchParams(window.location.search).get('url') ?? undefined;
  return (
    <WebSocketProvider {...(url === undefined ? {} : { url })} options={{ lifecycle: { networkChanges: true } }}>
      <header>
        <h1>comfywire</h1>
        <ConnectionIndicator />
      </header>
      <main>
        <section className="left">
          <ProgressPanel />
          <QueuePanel />
        </section>
        <section className="right">
          <HistoryList />
          <Settings />
        </section>
      </main>
      <Toasts />
    </WebSocketProvider>
  );
}
