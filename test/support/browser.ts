/**
 * Test support: the system's Chromium driven by playwright-core (nothing downloaded), headless,
 * with the network features that would reach outside the machine turned off (playwright gives
 * it a new empty profile). Every page keeps
 * the console errors and failed requests it saw, so a test can require there were none.
 */
import { type Browser, type Page, chromium } from 'playwright-core';
import { CHROMIUM } from './requirements.js';

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A new page that records console errors, page errors and failed or 4xx/5xx requests. */
export async function watchedPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`);
  });
  return { page, problems };
}
