/**
 * Loads one of Accord's native addons (`native/NAME.c`, built into `dist/native/NAME.node` by
 * `npm run build` where a C compiler is present). Each has a JavaScript twin that its caller
 * uses when this returns undefined.
 */
import { createRequire } from 'node:module';

export function loadAddon(name: string): unknown {
  // From src/ (tests run the TypeScript) the addons are in dist/; from dist/src/crypto, nearby.
  // A relative path is resolved by require against this file's directory, spaces and all.
  const path = import.meta.url.endsWith('.ts')
    ? `../../dist/native/${name}.node`
    : `../../native/${name}.node`;
  try {
    return createRequire(import.meta.url)(path) as unknown;
  } catch {
    return undefined; // not built, or built for another platform
  }
}
