/**
 * The web module: the dashboard's pages as server-rendered HTML (no JavaScript; charts as SVG),
 * each drawn from a plain model the monitor makes, which is also the page's JSON. Pure: no I/O.
 */
export type * from './model.js';
export { overviewPage } from './overview.js';
export { pathPage } from './path.js';
export { closurePage } from './closure.js';
export { findingsPage } from './findings.js';
export { demandPage, wantedPage } from './demand.js';
