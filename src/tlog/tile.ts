/**
 * C2SP tlog-tiles coordinates: tiles and entry bundles, their URL paths, and which tiles hold
 * the stored hashes a proof or a tree hash needs.
 */
import { TlogError } from './errors.js';
import { checkIndex } from './encoding.js';
import { HASH_SIZE } from './hash.js';
import { type HashReader, type TreeNode, subtreeHash } from './tree.js';

/** Merkle levels per tile, and hashes in a full tile (tlog-tiles: 256 wide, height 8). */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;

/**
 * A tile: hashes `index·256 … index·256+width−1` at Merkle level `8·level`; `width` is 256 for a
 * full tile and 1–255 for a partial one (served at `.p/<width>`).
 */
export interface Tile {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/** An entry bundle: entries `index·256 … index·256+width−1`, served at `tile/entries/…`. */
export interface EntryBundleTile {
  readonly index: number;
  readonly width: number;
}

/** The highest tile level the path grammar allows. */
export const MAX_TILE_LEVEL = 63;

/** Encodes a tile index as zero-padded 3-digit elements, all but the last prefixed `x`. */
export function formatTileIndex(index: number): string {
  checkIndex(index, 'tile index');
  let digits = String(index);
  digits = digits.padStart(Math.ceil(digits.length / 3) * 3, '0');
  const groups: string[] = [];
  for (let i = 0; i < digits.length; i += 3) groups.push(digits.slice(i, i + 3));
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

function widthSuffix(width: number): string {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) {
    throw new TlogError('range', `tile width must be 1 to 256, got ${width}`);
  }
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

/** The path of a tile below the log prefix: `tile/<L>/<N>[.p/<W>]`. */
export function tilePath(tile: Tile): string {
  if (!Number.isInteger(tile.level) || tile.level < 0 || tile.level > MAX_TILE_LEVEL) {
    throw new TlogError('range', `tile level must be 0 to 63, got ${tile.level}`);
  }
  return `tile/${tile.level}/${formatTileIndex(tile.index)}${widthSuffix(tile.width)}`;
}

/** The path of an entry bundle below the log prefix: `tile/entries/<N>[.p/<W>]`. */
export function entryBundlePath(bundle: EntryBundleTile): string {
  return `tile/entries/${formatTileIndex(bundle.index)}${widthSuffix(bundle.width)}`;
}

/** What a tile path names: a hash tile or an entry bundle. */
export type TilePathTarget =
  | { readonly kind: 'tile'; readonly tile: Tile }
  | { readonly kind: 'entries'; readonly bundle: EntryBundleTile };

const TILE_PATH =
  /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/){0,5}[0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

/**
 * Parses a tile or entry-bundle path (without the log prefix), accepting only the canonical
 * form: no leading `x000` element, no leading zeros in level or width, level ≤ 63, width ≤ 255
 * (a full tile has no `.p/` suffix). Anything else — `..`, extra slashes, a trailing slash — is a
 * `malformed` error.
 */
export function parseTilePath(path: string): TilePathTarget {
  const m = TILE_PATH.exec(path);
  if (m === null) throw new TlogError('malformed', `not a tile path: ${JSON.stringify(path)}`);
  const [, levelText, indexText, widthText] = m as unknown as [string, string, string, string?];
  const groups = indexText.split('/');
  if (groups.length > 1 && groups[0] === 'x000') {
    throw new TlogError('malformed', `tile index has a leading zero element: ${path}`);
  }
  const index = Number(groups.map((g) => g.replace('x', '')).join(''));
  if (!Number.isSafeInteger(index)) throw new TlogError('range', `tile index too large: ${path}`);
  const width = widthText === undefined ? TILE_WIDTH : Number(widthText);
  if (widthText !== undefined && width >= TILE_WIDTH) {
    throw new TlogError('malformed', `partial tile width ≥ 256: ${path}`);
  }
  if (levelText === 'entries') return { kind: 'entries', bundle: { index, width } };
  const level = Number(levelText);
  if (level > MAX_TILE_LEVEL) throw new TlogError('malformed', `tile level above 63: ${path}`);
  return { kind: 'tile', tile: { level, index, width } };
}

/** Number of hashes at tile level `level` (Merkle level 8·level) in a tree of `treeSize`. */
function countAtTileLevel(treeSize: number, level: number): number {
  return Math.floor(treeSize / TILE_WIDTH ** level);
}

/**
 * The tile at `level` and `index` as it stands in the tree of `treeSize` leaves: full, partial,
 * or absent (width 0 is returned as `undefined`).
 */
export function tileAt(level: number, index: number, treeSize: number): Tile | undefined {
  const width = Math.min(TILE_WIDTH, countAtTileLevel(treeSize, level) - index * TILE_WIDTH);
  return width > 0 ? { level, index, width } : undefined;
}

/** Where a stored hash lives: its tile (for the given tree size) and position in that tile. */
interface NodeLocation {
  readonly tile: Tile;
  readonly offset: number;
  readonly count: number;
}

function locate(node: TreeNode, treeSize: number): NodeLocation {
  const level = Math.floor(node.level / TILE_HEIGHT);
  const count = 2 ** (node.level % TILE_HEIGHT);
  const first = node.index * count; // index of the node's first hash at Merkle level 8·level
  const index = Math.floor(first / TILE_WIDTH);
  const tile = tileAt(level, index, treeSize);
  const offset = first % TILE_WIDTH;
  if (tile === undefined || offset + count > tile.width) {
    throw new TlogError(
      'range',
      `subtree ${node.level}/${node.index} is not complete in a tree of size ${treeSize}`,
    );
  }
  return { tile, offset, count };
}

/**
 * The tiles of the tree of `treeSize` leaves that hold the given stored hashes (for example
 * `planInclusionProof(…).nodes`), without duplicates.
 */
export function tilesForNodes(nodes: readonly TreeNode[], treeSize: number): Tile[] {
  const tiles = new Map<string, Tile>();
  for (const node of nodes) {
    const { tile } = locate(node, treeSize);
    tiles.set(tilePath(tile), tile);
  }
  return [...tiles.values()];
}

/** Splits tile data into its hashes, checking the length matches the tile's width. */
export function tileHashes(tile: Tile, data: Uint8Array): Uint8Array[] {
  if (data.length !== tile.width * HASH_SIZE) {
    throw new TlogError(
      'malformed',
      `tile ${tilePath(tile)} has ${data.length} bytes, want ${tile.width * HASH_SIZE}`,
    );
  }
  const hashes: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += HASH_SIZE) hashes.push(data.subarray(i, i + HASH_SIZE));
  return hashes;
}

/** Reads tiles (for example over HTTP), returning their data in the order asked. */
export interface TileReader {
  readTiles(tiles: readonly Tile[]): Promise<readonly Uint8Array[]>;
}

/**
 * A {@link TileReader} over `get(path)`, which returns a file of the log or undefined when the
 * log has no such file. A partial tile the log no longer serves is read from its full tile,
 * whose first hashes it is (tlog-tiles: a log MAY delete a partial tile once the full tile
 * exists, and clients MAY fall back to the full tile).
 */
export function tilePathReader(get: (path: string) => Promise<Uint8Array | undefined>): TileReader {
  return {
    readTiles: (tiles) =>
      Promise.all(
        tiles.map(async (tile) => {
          const data = await get(tilePath(tile));
          if (data !== undefined) return data;
          const full =
            tile.width < TILE_WIDTH
              ? await get(tilePath({ ...tile, width: TILE_WIDTH }))
              : undefined;
          if (full === undefined) {
            throw new TlogError('range', `the log serves no tile ${tilePath(tile)}`);
          }
          return full.length === TILE_WIDTH * HASH_SIZE
            ? full.subarray(0, tile.width * HASH_SIZE)
            : full;
        }),
      ),
  };
}

/**
 * A store for subtree hashes already computed. A complete subtree's hash never changes, so a
 * cache keyed by its position (`level/index`) stays valid as the tree grows.
 */
export interface SubtreeCache {
  get(key: string): Uint8Array | undefined;
  set(key: string, hash: Uint8Array): void;
}

/** A {@link SubtreeCache} keeping the `max` most recently stored hashes. */
export function boundedSubtreeCache(max: number): SubtreeCache {
  const map = new Map<string, Uint8Array>();
  return {
    get: (key) => map.get(key),
    set(key, hash) {
      map.set(key, hash);
      if (map.size > max) map.delete(map.keys().next().value as string);
    },
  };
}

/**
 * A {@link HashReader} over the tiles of the tree of `treeSize` leaves: it fetches each tile a
 * batch needs once and computes hashes below tile boundaries from the tile's hashes (skipping
 * tiles whose hashes `cache` already holds). It does not authenticate tiles: callers verify
 * what they compute (a proof against a signed root).
 */
export function tileHashReader(
  treeSize: number,
  tiles: TileReader,
  cache?: SubtreeCache,
): HashReader {
  return {
    async readHashes(nodes) {
      const keys = nodes.map((n) => `${n.level}/${n.index}`);
      const known = keys.map((k) => cache?.get(k));
      const missing = nodes.filter((_, i) => known[i] === undefined);
      const needed = tilesForNodes(missing, treeSize);
      const data = needed.length === 0 ? [] : await tiles.readTiles(needed);
      const byPath = new Map<string, Uint8Array[]>();
      needed.forEach((tile, i) => {
        byPath.set(tilePath(tile), tileHashes(tile, data[i] ?? new Uint8Array()));
      });
      return nodes.map((node, i) => {
        const hit = known[i];
        if (hit !== undefined) return hit;
        const { tile, offset, count } = locate(node, treeSize);
        const hashes = byPath.get(tilePath(tile)) ?? [];
        const hash = subtreeHash(hashes.slice(offset, offset + count));
        cache?.set(keys[i] as string, hash);
        return hash;
      });
    },
  };
}
