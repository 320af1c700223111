/**
 * E2E support: builds the example app, serves it with `vite preview`
 * proxying to a mock, and starts Debian's chromium through playwright-core
 * with a fresh profile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';

const config = fileURLToPath(new URL('../examples/react/vite.config.ts', import.meta.url));

/** Where test artefacts (the screenshot, the figures) go. */
export const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));

/** Builds the example once and serves it, proxying the API to `target`. */
export async function serveExample(target: string): Promise<{ url: string; server: PreviewServer }> {
  process.env['COMFY_URL'] = target;
  await build({ configFile: config, logLevel: 'warn' });
  // Silent: the proxy logs every socket the fault tests cut on purpose.
  const server = await preview({ configFile: config, logLevel: 'silent', preview: { host: '127.0.0.1', port: 0, strictPort: false } });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview has no URL');
  return { url, server };
}

/** The chromium binary (`$CHROMIUM`, else Debian's). */
export function chromiumPath(): string {
  return process.env['CHROMIUM'] ?? '/usr/bin/chromium';
}

/** A headless chromium with a fresh profile; `close` removes the profile. */
export async function launch(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'comfywire-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath(),
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1200, height: 900 },
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
