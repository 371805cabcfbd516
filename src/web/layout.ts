/** The frame every dashboard page shares: head, style, navigation and a search box. */
import { type Html, html, raw } from './html.js';

const STYLE = `
:root { --fg: #1d2430; --muted: #5c6778; --line: #dde2ea; --bg: #f6f8fb; --card: #fff;
  --ok: #1f7a4d; --ok-bg: #e3f4ea; --bad: #b42318; --bad-bg: #fde8e6; --warn: #9a5b00;
  --warn-bg: #fdf1dc; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { background: #18202c; color: #fff; padding: 0 24px; display: flex; align-items: center; gap: 24px; flex-wrap: wrap; }
header .brand { font-weight: 700; font-size: 17px; padding: 12px 0; letter-spacing: .02em; }
header nav a { color: #c9d4e6; text-decoration: none; padding: 14px 10px; display: inline-block; }
header nav a[aria-current] { color: #fff; box-shadow: inset 0 -3px 0 #6d9cf0; }
header form { margin-left: auto; }
header input { width: 340px; max-width: 60vw; padding: 6px 10px; border-radius: 6px; border: 0; font: inherit; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; word-break: break-all; }
h1 code { font-size: 19px; }
h2 { font-size: 17px; margin: 28px 0 10px; }
p.lead { color: var(--muted); margin: 0 0 16px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
.card .n { font-size: 26px; font-weight: 650; }
.card .l { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f6; font-size: 13px; color: var(--muted); font-weight: 600; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 13px; word-break: break-all; }
a { color: var(--accent); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; white-space: nowrap; }
.ok { color: var(--ok); background: var(--ok-bg); }
.bad { color: var(--bad); background: var(--bad-bg); }
.warn { color: var(--warn); background: var(--warn-bg); }
.muted { color: var(--muted); }
.verdict { border-radius: 10px; padding: 12px 16px; margin: 12px 0; border: 1px solid var(--line); }
pre.diff { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; overflow-x: auto; margin: 6px 0 0; }
pre.diff .del { color: var(--bad); } pre.diff .ins { color: var(--ok); }
svg text { font: 12px system-ui, sans-serif; fill: var(--muted); }
form.inline { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
form.inline input { padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; font: inherit; }
footer { color: var(--muted); font-size: 12px; margin-top: 32px; }
`;

export type Section = 'overview' | 'findings' | 'demand' | 'wanted' | 'path' | 'closure';

const NAV: readonly [Section, string, string][] = [
  ['overview', '/', 'Overview'],
  ['findings', '/findings', 'Findings'],
  ['demand', '/demand', 'Demand'],
  ['wanted', '/wanted', 'Wanted'],
];

/** A whole page: `title` for the tab, `section` marked in the navigation, `jsonHref` its JSON. */
export function page(options: {
  readonly title: string;
  readonly section: Section;
  readonly jsonHref: string;
  readonly body: Html;
  /** Reload after this many seconds (a comparison under way). */
  readonly refreshSeconds?: number;
}): string {
  const nav = NAV.map(
    ([section, href, label]) =>
      html`<a href="${href}" ${section === options.section ? raw(' aria-current="page"') : ''}
        >${label}</a
      >`,
  );
  const refresh =
    options.refreshSeconds === undefined
      ? ''
      : html`<meta http-equiv="refresh" content="${options.refreshSeconds}" />`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        ${refresh}
        <title>${options.title} · Accord monitor</title>
        <link rel="icon" href="data:," />
<link rel="alternate" type="application/json" href="${options.jsonHref}" />
        <style>
          ${raw(STYLE)}
        </style>
      </head>
      <body>
        <header>
          <span class="brand">Accord monitor</span>
          <nav>${nav}</nav>
          <form action="/search" method="get" role="search">
            <input
              name="path"
              placeholder="store path or hash part"
              aria-label="store path or hash part"
            />
          </form>
        </header>
        <main>
          ${options.body}
          <footer>
            Every number here comes from log entries this monitor verified against signed
            checkpoints. <a href="${options.jsonHref}">This page as JSON</a>.
          </footer>
        </main>
      </body>
    </html> `.text;
}

/** A column heading; `num` right-aligns a column of numbers. */
export type Column = string | readonly [string, 'num'];

/** A table of `rows` under `columns`, or the `empty` note when there are none. */
export function table(
  id: string,
  columns: readonly Column[],
  rows: readonly Html[],
  empty: Html,
): Html {
  if (rows.length === 0) return empty;
  const heads = columns.map((c) =>
    typeof c === 'string' ? html`<th>${c}</th>` : html`<th class="num">${c[0]}</th>`,
  );
  return html`<table id="${id}"><thead><tr>${heads}</tr></thead><tbody>${rows}</tbody></table>`;
}
