/**
 * The example app in Chromium against comfywire-mock: a workflow runs to
 * the end with live progress and its output image; a mid-run drop shows
 * "reconnecting" with a countdown and the prompt still ends once with its
 * outputs. A screenshot of the finished page is kept in e2e/artifacts.
 */
import { mkdirSync } from 'node:fs';
import type { BrowserContext, Page } from 'playwright-core';
import type { PreviewServer } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mock } from '../test/support.js';
import { ARTIFACTS, launch, serveExample } from './browser.js';

let mock: Mock;
let served: { url: string; server: PreviewServer };
let browser: { context: BrowserContext; close: () => Promise<void> };

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  mock = await Mock.start(1);
  served = await serveExample(mock.url);
  browser = await launch();
});
afterAll(async () => {
  await browser?.close();
  await served?.server.close();
  await mock?.stop();
});

async function openApp(): Promise<{ page: Page; console: string[] }> {
  const page = await browser.context.newPage();
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));
  page.on('pageerror', (e) => console.push(`pageerror: ${e.message}`));
  await page.goto(served.url);
  await page.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 15_000 });
  return { page, console };
}

/** Runs the workflow and waits until it shows live progress; returns its prompt id. */
async function runWorkflow(page: Page): Promise<string> {
  await page.getByTestId('run').click();
  const progress = page.locator('[data-testid="progress"][data-phase="running"]');
  await page.getByTestId('steps').filter({ hasText: /^[1-9]\d*\/20$/ }).waitFor({ timeout: 15_000 });
  const promptId = await progress.getAttribute('data-prompt');
  expect(promptId).toBeTruthy();
  return promptId!;
}

async function expectFinishedOnce(page: Page, promptId: string): Promise<void> {
  await page.locator(`[data-testid="progress"][data-prompt="${promptId}"][data-phase="succeeded"]`).waitFor({ timeout: 30_000 });
  await page.locator(`[data-testid="history-row"][data-prompt="${promptId}"]`).waitFor();
  expect(await page.locator(`[data-testid="history-row"][data-prompt="${promptId}"]`).count()).toBe(1);
  expect(await page.locator(`[data-testid="history-row"][data-prompt="${promptId}"]`).getAttribute('data-phase')).toBe('succeeded');
  const image = page.getByTestId('output-image').first();
  await image.waitFor();
  await page.waitForFunction(
    () => {
      const img = document.querySelector<HTMLImageElement>('[data-testid="output-image"]');
      return img !== null && img.complete && img.naturalWidth > 0;
    },
    undefined,
    { timeout: 10_000 },
  );
  const server = await mock.history(promptId);
  expect(server?.status.status_str).toBe('success');
  const filename = Object.values(server!.outputs)
    .flatMap((o) => ((o as { images?: { filename: string }[] }).images ?? []).map((i) => i.filename))
    .at(0);
  expect(await image.getAttribute('src')).toContain(`filename=${encodeURIComponent(filename!)}`);
}

describe('the example app in Chromium', () => {
  it('runs a workflow to the end with live progress, a preview and its output image', async () => {
    const { page, console } = await openApp();
    await page.getByTestId('debug').check();
    const promptId = await runWorkflow(page);
    await page.getByTestId('preview').waitFor({ timeout: 10_000 });
    await expectFinishedOnce(page, promptId);
    expect(console.some((line) => line.startsWith('comfywire in: {"type": "progress"'))).toBe(true);
    expect(console.filter((line) => line.startsWith('pageerror'))).toEqual([]);
    await page.screenshot({ path: `${ARTIFACTS}finished.png`, fullPage: true });
    await page.getByTestId('debug').uncheck();
    await page.close();
  });

  it('shows reconnecting with a countdown after a mid-run drop and still ends the prompt once', async () => {
    const { page } = await openApp();
    const promptId = await runWorkflow(page);
    await mock.fault({ fault: 'refuse_connects', count: 1 });
    await mock.fault({ fault: 'drop_sockets_now' });
    await page.locator('[data-testid="connection"][data-state="reconnecting"]').waitFor({ timeout: 10_000 });
    await page.getByTestId('countdown').filter({ hasText: /attempt \d+ in \d+ s/ }).waitFor();
    await page.getByTestId('retry-now').waitFor();
    await page.getByTestId('connection-state').filter({ hasText: /^connected$/ }).waitFor({ timeout: 20_000 });
    await expectFinishedOnce(page, promptId);
    await page.screenshot({ path: `${ARTIFACTS}after-reconnect.png`, fullPage: true });
    await page.close();
  });
});
