/** The overview page: every builder log, the findings by kind, reproducibility over time. */
import { shareChart } from './chart.js';
import { age, count, percent, utc } from './format.js';
import { html, segment } from './html.js';
import { page } from './layout.js';
import type { OverviewModel } from './model.js';

export function overviewPage(m: OverviewModel): string {
  const r = m.reproducibility;
  const findingTotal = Object.values(m.findings).reduce((a, b) => a + b, 0);
  const logs = m.logs.map((log) => {
    const state =
      log.error !== null
        ? html`<span class="badge bad" title="${log.error}">failing</span>`
        : log.treeSize === 0
          ? html`<span class="badge warn">no checkpoint yet</span>`
          : html`<span class="badge ok">followed</span>`;
    const witnessed = log.witnessed
      ? html`<span class="badge ok">witnessed</span>
          <span class="muted">${log.cosigners.join(', ')}</span>`
      : html`<span class="badge warn">not witnessed</span>`;
    const seen = log.cosignedAt ?? log.verifiedAt;
    return html`<tr data-log="${log.origin}">
      <td><code>${log.origin}</code><br /><span class="muted mono">${log.url}</span></td>
      <td>${state}</td>
      <td class="num">${count(log.treeSize)}</td>
      <td>
        ${seen === null ? html`<span class="muted">—</span>` : html`<span title="${utc(seen)}">${age(m.generatedAt - seen)} ago</span>`}
      </td>
      <td>${witnessed}</td>
      <td class="num">${count(log.claims)}</td>
      <td class="num" data-agreement="${log.agreeing}/${log.shared}">
        ${percent(log.agreeing, log.shared)} <span class="muted">of ${count(log.shared)}</span>
      </td>
    </tr>`;
  });
  const kinds = Object.entries(m.findings).map(
    ([kind, n]) =>
      html`<div class="card">
        <div class="n" data-finding-kind="${kind}">${count(n)}</div>
        <div class="l"><a href="/findings?kind=${segment(kind)}">${kind}</a></div>
      </div>`,
  );
  const body = html`<h1>Overview</h1>
    <p class="lead">
      What ${count(m.logs.length)} builder logs claim about ${count(m.paths)} store paths in
      <code>${m.storeDir}</code>, as this monitor verified it.
    </p>
    <div class="cards">
      <div class="card">
        <div class="n" id="reproducibility">${percent(r.agreeing, r.shared)}</div>
        <div class="l">
          reproducible: builders agree on ${count(r.agreeing)} of the ${count(r.shared)} paths two
          or more claimed
        </div>
      </div>
      <div class="card">
        <div class="n" id="paths">${count(m.paths)}</div>
        <div class="l">store paths claimed</div>
      </div>
      <div class="card">
        <div class="n" id="findings-total">${count(findingTotal)}</div>
        <div class="l"><a href="/findings">findings</a></div>
      </div>
    </div>
    <h2>Builder logs</h2>
    <table id="logs">
      <thead>
        <tr>
          <th>log</th>
          <th>state</th>
          <th class="num">tree size</th>
          <th>last checkpoint</th>
          <th>witnesses</th>
          <th class="num">claims</th>
          <th class="num">agrees with the others</th>
        </tr>
      </thead>
      <tbody>
        ${logs}
      </tbody>
    </table>
    <h2>Findings by kind</h2>
    <div class="cards" id="finding-kinds">${kinds}</div>
    <h2>Reproducibility over time</h2>
    ${shareChart(
      m.history.map((p) => ({ at: p.at, part: p.agreeing, whole: p.shared })),
      'share of the paths claimed by two or more builders on which they agree, over time',
    )}`;
  return page({ title: 'Overview', section: 'overview', jsonHref: '/?format=json', body });
}
