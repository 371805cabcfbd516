/**
 * The dashboard's routes on the monitor's HTTP server. Each page URL answers HTML to a browser
 * (an `Accept` naming text/html) and its model as JSON otherwise, or as `?format=` says. Pages
 * carry no script at all, and a Content-Security-Policy that would refuse one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isHashPart } from '../nix/index.js';
import { HttpError, send } from '../server/index.js';
import {
  closurePage,
  demandPage,
  findingsPage,
  overviewPage,
  pathPage,
  wantedPage,
} from '../web/index.js';
import type { Dashboard } from './dashboard.js';
import type { MonitorStore } from './store.js';

const CSP =
  "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** The findings page lists the newest this many (all are in `/findings` as JSON). */
const MAX_FINDINGS_SHOWN = 500;

/** Whether to answer HTML: `?format=html`, or a browser's Accept without `?format=json`. */
export function wantsHtml(req: IncomingMessage, url: URL): boolean {
  const format = url.searchParams.get('format');
  if (format === 'html') return true;
  if (format !== null) return false;
  return /\btext\/html\b/.test(req.headers.accept ?? '');
}

export function sendHtml(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: string,
): void {
  send(req, res, status, body, {
    type: 'text/html; charset=utf-8',
    cacheControl: 'no-cache',
    gzip: true,
    headers: {
      'Content-Security-Policy': CSP,
      'X-Content-Type-Options': 'nosniff',
      Vary: 'Accept',
    },
  });
}

export function sendJson(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  send(req, res, status, `${JSON.stringify(body, null, 2)}\n`, {
    type: 'application/json',
    cacheControl: 'no-store',
    gzip: true,
    headers,
  });
}

/** The hash part of what a user typed: a hash part, a store path, or a path below one. */
export function hashPartFromInput(text: string): string {
  const trimmed = text.trim();
  const base = trimmed.includes('/')
    ? (trimmed.split('/').find((s) => /^[0-9a-z]{32}-/.test(s)) ?? '')
    : trimmed;
  const hashPart = base.slice(0, 32);
  if (!isHashPart(hashPart) || (base.length > 32 && base[32] !== '-'))
    throw new HttpError(400, 'path: want a store path or its 32-character hash part');
  return hashPart;
}

function kParam(url: URL, fallback: number): number {
  const text = url.searchParams.get('k');
  if (text === null || text === '') return fallback;
  if (!/^[1-9][0-9]?$/.test(text)) throw new HttpError(400, 'k must be a number from 1 to 99');
  return Number(text);
}

function limitParam(url: URL): number {
  const text = url.searchParams.get('limit');
  if (text === null || text === '') return 100;
  if (!/^[1-9][0-9]{0,3}$/.test(text))
    throw new HttpError(400, 'limit must be a number from 1 to 9999');
  return Number(text);
}

/**
 * Answers a dashboard page; false when `url` is not one. `defaultK` is the policy's threshold
 * for the closure report.
 */
export async function routeDashboard(
  dashboard: Dashboard,
  store: MonitorStore,
  defaultK: number,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<boolean> {
  const path = url.pathname;
  const html = wantsHtml(req, url);
  let m: RegExpExecArray | null;
  if (path === '/') {
    const model = dashboard.overview();
    if (html) sendHtml(req, res, 200, overviewPage(model));
    else sendJson(req, res, 200, model);
  } else if (path === '/search') {
    const hashPart = hashPartFromInput(url.searchParams.get('path') ?? '');
    res.writeHead(303, { Location: `/paths/${hashPart}`, 'Content-Length': '0' });
    res.end();
  } else if ((m = /^\/paths\/([^/]+)$/.exec(path)) !== null) {
    const hashPart = (m[1] ?? '').slice(0, 32);
    if (!isHashPart(hashPart)) throw new HttpError(400, 'not a store path hash part');
    const model = await dashboard.pathWithDiff(hashPart, html ? 1500 : 0);
    if (html) sendHtml(req, res, 200, pathPage(model));
    else sendJson(req, res, 200, model);
  } else if ((m = /^\/closure\/([^/]+)$/.exec(path)) !== null) {
    const hashPart = (m[1] ?? '').slice(0, 32);
    if (!isHashPart(hashPart)) throw new HttpError(400, 'not a store path hash part');
    const model = dashboard.closure(hashPart, kParam(url, defaultK));
    if (html) sendHtml(req, res, 200, closurePage(model));
    else sendJson(req, res, 200, model);
  } else if (path === '/findings' && html) {
    const kind = url.searchParams.get('kind');
    const findings = store.latestFindings(MAX_FINDINGS_SHOWN, kind ?? undefined);
    const counts = Object.fromEntries(store.findingCounts());
    sendHtml(req, res, 200, findingsPage({ findings, counts }, kind));
  } else if (path === '/demand' && html) {
    sendHtml(req, res, 200, demandPage(dashboard.demand(limitParam(url))));
  } else if (path === '/wanted' && html) {
    sendHtml(req, res, 200, wantedPage(dashboard.wanted(kParam(url, defaultK), limitParam(url))));
  } else if ((m = /^\/findings\/([0-9]{1,15})$/.exec(path)) !== null) {
    const finding = store.findingById(Number(m[1]));
    if (finding === undefined) throw new HttpError(404, `no finding ${m[1] ?? ''}`);
    sendJson(req, res, 200, finding, {
      'Content-Disposition': `attachment; filename="accord-finding-${finding.id}.json"`,
    });
  } else return false;
  return true;
}
