/** The closure report: how much of a store path's closure k builders agree on. */
import { count, percent } from './format.js';
import { html, segment } from './html.js';
import { page } from './layout.js';
import type { ClosureModel, ClosureStatus } from './model.js';

const LABEL: Readonly<Record<ClosureStatus, [string, string]>> = {
  agreed: ['ok', 'agreed by k or more'],
  disputed: ['bad', 'disputed'],
  'too-few': ['warn', 'fewer than k builders'],
  unclaimed: ['warn', 'no claim'],
};

export function closurePage(m: ClosureModel): string {
  const total = m.paths.length;
  const cards = (Object.keys(LABEL) as ClosureStatus[]).map(
    (s) =>
      html`<div class="card">
        <div class="n" data-closure-count="${s}">${count(m.counts[s])}</div>
        <div class="l">${LABEL[s][1]} · ${percent(m.counts[s], total)}</div>
      </div>`,
  );
  const order: ClosureStatus[] = ['disputed', 'too-few', 'unclaimed', 'agreed'];
  const rows = [...m.paths]
    .sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status))
    .map(
      (p) =>
        html`<tr data-closure-path="${p.hashPart}" data-status="${p.status}">
          <td>
            <a href="/paths/${segment(p.hashPart)}"><code>${p.storePath}</code></a>
          </td>
          <td><span class="badge ${LABEL[p.status][0]}">${LABEL[p.status][1]}</span></td>
          <td class="num">${p.logs.length}</td>
          <td class="num">${p.answers}</td>
        </tr>`,
    );
  const body = html`<h1>Closure of <code>${m.root}</code></h1>
    <form class="inline" method="get">
      <label
        >k <input name="k" type="number" min="1" max="99" value="${m.k}" style="width:5em" /></label
      ><button>Report</button>
    </form>
    <p class="lead">
      ${count(total)} paths, following the references of the answer most builders
      claim${m.truncated ? ' (the walk stopped at its limit)' : ''}.
    </p>
    <div class="cards">${cards}</div>
    <h2>Paths</h2>
    <table id="closure">
      <thead>
        <tr>
          <th>store path</th>
          <th>status</th>
          <th class="num">builders</th>
          <th class="num">answers</th>
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>`;
  return page({
    title: `Closure of ${m.root}`,
    section: 'closure',
    jsonHref: `/closure/${segment(m.root.replace(/^.*\//, '').slice(0, 32))}?k=${m.k}&format=json`,
    body,
  });
}
