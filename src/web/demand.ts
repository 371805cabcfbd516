/** The demand page (what proxies fetch) and the wanted list (what they asked for and refused). */
import { count, utc } from './format.js';
import { html, segment } from './html.js';
import { page, table } from './layout.js';
import type { DemandModel, WantedModel } from './model.js';

function pathCell(hashPart: string, storePath: string | null) {
  return html`<a href="/paths/${segment(hashPart)}"><code>${storePath ?? hashPart}</code></a>`;
}

export function demandPage(m: DemandModel): string {
  const rows = m.paths.map(
    (p, i) =>
      html`<tr data-demand-path="${p.hashPart}">
        <td class="num">${i + 1}</td>
        <td>${pathCell(p.hashPart, p.storePath)}</td>
        <td class="num" data-requests>${count(p.requests)}</td>
        <td class="num">${count(p.refused)}</td>
        <td class="num">${count(p.reporters)}</td>
        <td>${utc(p.lastPeriod * 1000)}</td>
      </tr>`,
  );
  const body = html`<h1>Demand</h1>
    <p class="lead">
      The store paths most requested through the ${count(m.reporters)}
      ${m.reporters === 1 ? 'proxy' : 'proxies'} reporting to this monitor, over ${count(m.periods)}
      reporting periods. Proxies send counts per path and period only; see the privacy rules in the
      documentation.
    </p>
    ${table(
      'demand',
      [
        ['#', 'num'],
        'store path',
        ['requests', 'num'],
        ['refused', 'num'],
        ['proxies', 'num'],
        'last period',
      ],
      rows,
      html`<p class="muted" id="no-demand">No proxy has reported demand yet.</p>`,
    )}`;
  return page({ title: 'Demand', section: 'demand', jsonHref: '/demand?format=json', body });
}

export function wantedPage(m: WantedModel): string {
  const rows = m.paths.map(
    (p, i) =>
      html`<tr data-wanted-path="${p.hashPart}">
        <td class="num">${i + 1}</td>
        <td>${pathCell(p.hashPart, p.storePath)}</td>
        <td class="num">${count(p.refused)}</td>
        <td class="num">${count(p.requests)}</td>
        <td class="num">${count(p.claims)}</td>
        <td class="num" data-failures>${count(p.failures)}</td>
        <td>
          ${p.derivers.length === 0 ? html`<span class="muted">unknown</span>` : p.derivers.map((d) => html`<code>${d}</code><br />`)}
        </td>
      </tr>`,
  );
  const body = html`<h1>Wanted</h1>
    <form class="inline" method="get">
      <label
        >k <input name="k" type="number" min="1" max="99" value="${m.k}" style="width:5em" /></label
      ><button>Rank</button>
    </form>
    <p class="lead">
      Paths people asked for that were refused for lack of quorum or that fewer than ${m.k} builders
      claim, most refused first: what rebuilders should build next. A path whose rebuilds failed
      stays wanted; the count of failed attempts says how hard it has been.
      <a href="/wanted?k=${m.k}&amp;format=text">As a plain list</a> for
      <code>accord rebuild</code>.
    </p>
    ${table(
      'wanted',
      [
        ['#', 'num'],
        'store path',
        ['refused', 'num'],
        ['requests', 'num'],
        ['agreeing builders', 'num'],
        ['failed rebuilds', 'num'],
        'deriver',
      ],
      rows,
      html`<p class="muted" id="no-wanted">Nothing is wanted: every requested path has ${m.k} or more agreeing builders.</p>`,
    )}`;
  return page({
    title: 'Wanted',
    section: 'wanted',
    jsonHref: `/wanted?k=${m.k}&format=json`,
    body,
  });
}
