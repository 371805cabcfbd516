/** The host module: adapters to the local machine (file system, the local Nix installation). */
export { narSourceFromPath } from './nar-fs.js';
export { HAVE_NATIVE_NAR, hashNarPath, serialiseNative } from './nar-native.js';
export { buildAttributes, pathInfoClaims, queryOutputs, storedClaims } from './nix-store.js';
export { writeFileCache } from './file-cache.js';
