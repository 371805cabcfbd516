/** The host module: adapters to the local machine (file system, the local Nix installation). */
export { narSourceFromPath } from './nar-fs.js';
export { HAVE_NATIVE_NAR, hashNarPath, serialiseNative } from './nar-native.js';
export {
  type StoredPath,
  buildAttributes,
  pathInfoClaims,
  queryOutputs,
  run as runNix,
  storedClaims,
  storedPaths,
} from './nix-store.js';
export { writeFileCache } from './file-cache.js';
