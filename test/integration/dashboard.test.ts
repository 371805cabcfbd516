/**
 * The dashboard in the real Debian Chromium, over a world built with real Nix: the demo's three
 * builders (an agreed closure app → lib, a path builder C tampered with, a path only builder A
 * has) plus a path that does not reproduce — built by Nix for builder A, then rebuilt by
 * `nix-store --check` for builder B, which keeps the differing output. Every page loads
 * without console errors or failed requests, shows the numbers and verdicts this world must
 * give, links between pages work, and the path page names the file that differs. The
 * screenshots go to docs/dashboard/ with ACCORD_UPDATE_SCREENSHOTS=1 (else to a temporary
 * directory: they are taken either way).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type DemoNetwork, startDemo } from '../../src/demo/index.js';
import { narSourceFromPath, pathInfoClaims } from '../../src/host/index.js';
import { writeNar, encodeNix32 } from '../../src/nix/index.js';
import { silentLogger } from '../../src/server/index.js';
import { launchBrowser, watchedPage } from '../support/browser.js';
import { NIX_CONFIG } from '../support/nix.js';
import { HAVE_CHROMIUM, HAVE_NIX, requireAvailable, shouldRun } from '../support/requirements.js';
import { createHash } from 'node:crypto';

const exec = promisify(execFile);
const SHOTS =
  process.env.ACCORD_UPDATE_SCREENSHOTS === '1'
    ? new URL('../../docs/dashboard/', import.meta.url).pathname
    : mkdtempSync(join(tmpdir(), 'accord-shots-'));

const hashPart = (path: string) => path.slice('/nix/store/'.length, '/nix/store/'.length + 32);

/** Builds a derivation whose output differs in every build; returns the output and Nix's second, differing build. */
async function buildUnstable(dir: string, salt: string): Promise<{ out: string; check: string }> {
  const file = join(dir, 'unstable.nix');
  // $$ is the builder's process id: the same script writes another build-id each time.
  writeFileSync(
    file,
    `derivation { name = "accord-dashboard-unstable"; salt = "${salt}"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "/bin/mkdir -p $out/share; echo 'the same in every build' > $out/README; echo \\"build $$\\" > $out/share/build-id" ]; }\n`,
  );
  const env = { ...process.env, NIX_CONFIG };
  const drv = (await exec('nix-instantiate', [file], { env })).stdout.trim();
  const out = (await exec('nix-store', ['--realise', drv], { env })).stdout.trim();
  // Nix refuses the rebuild (it differs) and keeps it beside the output with --keep-failed.
  await exec('nix-store', ['--realise', '--check', '--keep-failed', drv], { env }).then(
    () => {
      throw new Error('nix-store --check found the unstable derivation deterministic');
    },
    (e: unknown) => {
      if (!/may not be deterministic/.test((e as { stderr?: string }).stderr ?? '')) throw e;
    },
  );
  return { out, check: `${out}.check` };
}

function narOf(path: string): Buffer {
  return Buffer.concat([...writeNar(narSourceFromPath(path))]);
}

describe.runIf(shouldRun(HAVE_NIX && HAVE_CHROMIUM))('the dashboard in Chromium', () => {
  let net: DemoNetwork;
  let browser: Browser;
  let unstable: string;
  /** How far ahead the proxy's clock runs: moved on to end a demand period. */
  let skew = 0;
  const base = () => net.monitor.url;

  beforeAll(async () => {
    requireAvailable(HAVE_NIX, 'Nix');
    requireAvailable(HAVE_CHROMIUM, 'Chromium (Debian package chromium)');
    process.env.NIX_CONFIG = NIX_CONFIG;
    const dir = mkdtempSync(join(tmpdir(), 'accord-dashboard-'));
    net = await startDemo({
      dir,
      portBase: 0,
      withNix: true,
      logger: () => silentLogger,
      now: () => Date.now() + skew,
    });
    const { out, check } = await buildUnstable(dir, `${Date.now()}`);
    unstable = out;
    const [claim] = await pathInfoClaims([out]);
    if (claim === undefined) throw new Error('no claim for the unstable path');
    const second = narOf(check);
    await net.publish('a', [{ claim, nar: narOf(out) }]);
    await net.publish('b', [
      {
        claim: {
          ...claim,
          narHash: `sha256:${encodeNix32(createHash('sha256').update(second).digest())}`,
          narSize: second.length,
        },
        nar: second,
      },
    ]);
    // What Nix would ask the proxy: the single-builder path most (refused), the unstable one
    // (refused: no majority), the agreed app (served). Then the period ends and is reported.
    const ask = async (path: string, times: number, status: number) => {
      for (let i = 0; i < times; i++) {
        const res = await fetch(`${net.proxy.url}/${hashPart(path)}.narinfo`);
        expect(res.status).toBe(status);
        await res.arrayBuffer();
      }
    };
    await ask(net.builds.single.claim.storePath, 5, 404);
    await ask(unstable, 3, 404);
    await ask(net.builds.app.claim.storePath, 2, 200);
    skew = 61_000;
    await net.reportDemand();
    browser = await launchBrowser();
  }, 300_000);

  afterAll(async () => {
    await (browser as Browser | undefined)?.close();
    await (net as DemoNetwork | undefined)?.close();
  });

  /** Loads a page with no console error or failed request; its screenshot is `shot`.png. */
  async function visit(path: string, shot: string): Promise<Page> {
    const { page, problems } = await watchedPage(browser);
    const res = await page.goto(`${base()}${path}`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-type']).toMatch(/^text\/html/);
    // The documentation shows one screenshot of each page; the others go to a temporary directory.
    const docs = !['overview-again', 'path-app'].includes(shot);
    await page.screenshot({ path: join(docs ? SHOTS : tmpdir(), `${shot}.png`), fullPage: true });
    expect(problems).toEqual([]);
    return page;
  }

  test('overview: three witnessed logs, their claims and agreement, two disagreements, 50% reproducible', async () => {
    const page = await visit('/', 'overview');
    const rows = page.locator('#logs tbody tr');
    expect(await rows.count()).toBe(3);
    const row = (b: string) => page.locator(`tr[data-log="demo.accord.example/builder-${b}"]`);
    // A: lib, app, tampered, single, unstable; B: all but single; C: lib, app, its tampered.
    expect(await row('a').locator('td').nth(5).innerText()).toBe('5');
    expect(await row('b').locator('td').nth(5).innerText()).toBe('4');
    expect(await row('c').locator('td').nth(5).innerText()).toBe('3');
    // Agreeing with the majority: A and B on lib, app and tampered (not unstable: no majority).
    expect(await row('a').locator('[data-agreement]').getAttribute('data-agreement')).toBe('3/4');
    expect(await row('b').locator('[data-agreement]').getAttribute('data-agreement')).toBe('3/4');
    expect(await row('c').locator('[data-agreement]').getAttribute('data-agreement')).toBe('2/3');
    for (const b of ['a', 'b', 'c']) expect(await row(b).innerText()).toContain('witnessed');
    expect(await page.locator('#paths').innerText()).toBe('5');
    // Shared: lib, app, tampered, unstable; agreed: lib and app.
    expect(await page.locator('#reproducibility').innerText()).toBe('50.0%');
    expect(await page.locator('[data-finding-kind="disagreement"]').innerText()).toBe('2');
    expect(await page.locator('[data-finding-kind="fork"]').innerText()).toBe('0');
    expect(await page.locator('svg[role="img"] polyline').count()).toBe(1);
  });

  test('findings → path: the unstable path has no quorum, and the page names the file that differs', async () => {
    const page = await visit('/findings', 'findings');
    const finding = page.locator(`#findings tr`, { hasText: hashPart(unstable) });
    expect(await finding.count()).toBe(1);
    await finding.getByRole('link', { name: "the path's claims" }).click();
    await page.waitForURL(`**/paths/${hashPart(unstable)}`);
    // The comparison may still run on the first visit: the page reloads itself until it is done.
    await page.locator('#diff').waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(SHOTS, 'path-unstable.png'), fullPage: true });
    expect(await page.locator('#verdict').innerText()).toMatch(/^no-quorum/);
    const differing: (string | null)[] = [];
    for (const row of await page.locator('#diff tbody tr[data-diff-path]').all())
      differing.push(await row.getAttribute('data-diff-path'));
    expect(differing).toEqual(['share/build-id']);
    expect(await page.locator('#diff pre.diff .del').innerText()).toMatch(/^-build [0-9]+$/);
    expect(await page.locator('#diff pre.diff .ins').innerText()).toMatch(/^\+build [0-9]+$/);
  });

  test('the tampered path: trusted by A and B, C in the minority, its one file differing', async () => {
    const page = await visit(`/paths/${hashPart(net.builds.tampered.claim.storePath)}`, 'path');
    await page.locator('#diff').waitFor({ timeout: 20_000 });
    expect(await page.locator('#verdict').innerText()).toMatch(/^trusted/);
    const badge = (b: string) =>
      page.locator(`tr[data-claim-log="demo.accord.example/builder-${b}"] .badge`).first();
    expect(await badge('a').innerText()).toBe('majority');
    expect(await badge('b').innerText()).toBe('majority');
    expect(await badge('c').innerText()).toBe('minority');
    expect(await page.locator('#diff tr[data-diff-path=""]').count()).toBe(1);
  });

  test('closure report of the app: two paths, both agreed by 2 or more; k = 4 makes them too few', async () => {
    const app = hashPart(net.builds.app.claim.storePath);
    const path = await visit(`/paths/${app}`, 'path-app');
    await path.getByRole('link', { name: 'Closure report' }).click();
    await path.waitForURL(`**/closure/${app}`);
    expect(await path.locator('[data-closure-count="agreed"]').innerText()).toBe('2');
    expect(await path.locator('[data-closure-count="disputed"]').innerText()).toBe('0');
    await path.screenshot({ path: join(SHOTS, 'closure.png'), fullPage: true });
    await path.locator('input[name="k"]').fill('4');
    await path.getByRole('button', { name: 'Report' }).click();
    await path.waitForURL(/k=4/);
    expect(await path.locator('[data-closure-count="too-few"]').innerText()).toBe('2');
  });

  test('demand and the wanted list: the refused path asked for most comes first, with its deriver', async () => {
    const page = await visit('/demand', 'demand');
    const rows = page.locator('#demand tbody tr');
    expect(await rows.count()).toBe(3);
    expect(await rows.nth(0).getAttribute('data-demand-path')).toBe(
      hashPart(net.builds.single.claim.storePath),
    );
    expect(await rows.nth(0).locator('[data-requests]').innerText()).toBe('5');
    await page.getByRole('link', { name: 'Wanted' }).click();
    await page.waitForURL('**/wanted');
    await page.screenshot({ path: join(SHOTS, 'wanted.png'), fullPage: true });
    const wanted: (string | null)[] = [];
    for (const row of await page.locator('#wanted tbody tr').all())
      wanted.push(await row.getAttribute('data-wanted-path'));
    expect(wanted).toEqual([hashPart(net.builds.single.claim.storePath), hashPart(unstable)]);
    expect(await page.locator('#wanted tbody tr').first().innerText()).toContain('.drv');
    const text = await (await fetch(`${base()}/wanted?k=2&format=text`)).text();
    expect(text.split('\n')[0]).toMatch(
      new RegExp(
        `^${net.builds.single.claim.storePath} /nix/store/[0-9a-z]{32}-accord-demo-single\\.drv$`,
      ),
    );
    await page.locator('#wanted tbody tr').first().getByRole('link').click();
    await page.waitForURL(`**/paths/${hashPart(net.builds.single.claim.storePath)}`);
    expect(await page.locator('#demand').innerText()).toMatch(
      /Requested 5 times .* refused 5 times/,
    );
  });

  test('the search box finds a path by its full store path; every page is also JSON', async () => {
    const page = await visit('/', 'overview-again');
    await page.locator('input[name="path"]').fill(net.builds.single.claim.storePath);
    await page.locator('input[name="path"]').press('Enter');
    await page.waitForURL(`**/paths/${hashPart(net.builds.single.claim.storePath)}`);
    expect(await page.locator('#verdict').innerText()).toMatch(/^no-quorum/);
    const json = (await (await fetch(`${base()}/?format=json`)).json()) as { paths: number };
    expect(json.paths).toBe(5);
    const closure = (await (
      await fetch(`${base()}/closure/${hashPart(net.builds.app.claim.storePath)}`)
    ).json()) as { counts: Record<string, number> };
    expect(closure.counts).toEqual({ agreed: 2, disputed: 0, 'too-few': 0, unclaimed: 0 });
  });
});
