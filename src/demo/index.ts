/**
 * The demo module: `accord demo`'s complete local network (three builder logs, a witness, a
 * monitor, a 2-of-3 proxy and the builders' caches), on real Nix builds when Nix is present.
 */
export { type DemoBuilds, type DemoPath, buildWithNix, generatedBuilds } from './builds.js';
export { BUILDERS, type DemoNetwork, type DemoOptions, startDemo } from './network.js';
