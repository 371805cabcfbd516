/** A small SVG line chart of a share over time (reproducibility), drawn on the server. */
import { type Html, html } from './html.js';
import { utc } from './format.js';

export interface SharePoint {
  readonly at: number;
  readonly part: number;
  readonly whole: number;
}

const W = 720;
const H = 200;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };

/**
 * The share part/whole of each point as a line from 0 to 100%, times along the x axis. Points
 * with nothing to share are left out; fewer than two points draw a single dot or a note.
 */
export function shareChart(points: readonly SharePoint[], label: string): Html {
  const shown = points.filter((p) => p.whole > 0);
  if (shown.length === 0)
    return html`<p class="muted">No path has been claimed by two builders yet.</p>`;
  const t0 = shown[0]?.at ?? 0;
  const t1 = shown[shown.length - 1]?.at ?? t0;
  const x = (at: number) =>
    PAD.left +
    (t1 === t0
      ? (W - PAD.left - PAD.right) / 2
      : ((at - t0) / (t1 - t0)) * (W - PAD.left - PAD.right));
  const y = (share: number) => PAD.top + (1 - share) * (H - PAD.top - PAD.bottom);
  const coords = shown.map((p) => `${x(p.at).toFixed(1)},${y(p.part / p.whole).toFixed(1)}`);
  const grid = [0, 0.25, 0.5, 0.75, 1].map(
    (s) =>
      html`<line
          x1="${PAD.left}"
          x2="${W - PAD.right}"
          y1="${y(s).toFixed(1)}"
          y2="${y(s).toFixed(1)}"
          stroke="#dde2ea"
        /><text x="${PAD.left - 6}" y="${(y(s) + 4).toFixed(1)}" text-anchor="end"
          >${Math.round(s * 100)}%</text
        >`,
  );
  const last = shown[shown.length - 1] as SharePoint;
  const dots =
    shown.length <= 40
      ? shown.map(
          (p) =>
            html`<circle
              cx="${x(p.at).toFixed(1)}"
              cy="${y(p.part / p.whole).toFixed(1)}"
              r="3"
              fill="#2f5fb3"
              ><title>${utc(p.at)}: ${p.part} of ${p.whole}</title></circle
            >`,
        )
      : [];
  return html`<svg
    viewBox="0 0 ${W} ${H}"
    width="100%"
    role="img"
    aria-label="${label}"
    style="max-width:${W}px;background:#fff;border:1px solid #dde2ea;border-radius:10px"
  >
    ${grid}
    <polyline points="${coords.join(' ')}" fill="none" stroke="#2f5fb3" stroke-width="2" />
    ${dots}
    <text x="${PAD.left}" y="${H - 8}">${utc(t0)}</text>
    <text x="${W - PAD.right}" y="${H - 8}" text-anchor="end">
      ${utc(t1)} · ${Math.round((100 * last.part) / last.whole)}%
    </text>
  </svg>`;
}
