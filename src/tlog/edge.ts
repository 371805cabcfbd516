/**
 * Growing a tiled tree: the state needed to append leaves is only the rightmost partial tile at
 * each level (the "edge"). Appending yields every tile that changed and the new root hash, so a
 * log server writes tiles without reading anything else.
 */
import { TlogError } from './errors.js';
import { checkIndex } from './encoding.js';
import { EMPTY_ROOT, HASH_SIZE } from './hash.js';
import { TILE_HEIGHT, TILE_WIDTH, type Tile, tileHashes } from './tile.js';
import { foldRange, rangeNodes, subtreeHash } from './tree.js';

/**
 * The right edge of a tree of `treeSize` leaves: `partials[L]` holds the hashes of the partial
 * tile at level L (⌊treeSize/256^L⌋ mod 256 of them; none when that tile is full or absent),
 * for every level that has any hash.
 */
export interface TileEdge {
  readonly treeSize: number;
  readonly partials: readonly (readonly Uint8Array[])[];
}

/** A tile with its contents, as a server stores and serves it. */
export interface TileData {
  readonly tile: Tile;
  readonly data: Uint8Array;
}

/** The edge of the empty tree. */
export const EMPTY_EDGE: TileEdge = { treeSize: 0, partials: [] };

/** The partial tiles that make up the edge of the tree of `treeSize` leaves. */
export function edgeTiles(treeSize: number): Tile[] {
  checkIndex(treeSize, 'tree size');
  const tiles: Tile[] = [];
  for (
    let level = 0, count = treeSize;
    count > 0;
    level++, count = Math.floor(count / TILE_WIDTH)
  ) {
    const width = count % TILE_WIDTH;
    if (width > 0) tiles.push({ level, index: Math.floor(count / TILE_WIDTH), width });
  }
  return tiles;
}

/**
 * Builds the edge of the tree of `treeSize` leaves from the data of its {@link edgeTiles}, in
 * that order; throws `malformed` when a tile's length is wrong.
 */
export function edgeFromTiles(treeSize: number, data: readonly Uint8Array[]): TileEdge {
  const tiles = edgeTiles(treeSize);
  if (data.length !== tiles.length) {
    throw new TlogError('malformed', `edge of size ${treeSize} has ${tiles.length} partial tiles`);
  }
  const partials: Uint8Array[][] = [];
  for (let count = treeSize; count > 0; count = Math.floor(count / TILE_WIDTH)) partials.push([]);
  tiles.forEach((tile, i) => {
    partials[tile.level] = tileHashes(tile, data[i] as Uint8Array);
  });
  return { treeSize, partials };
}

function concatHashes(hashes: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(hashes);
}

/**
 * Appends leaf hashes to a tree: returns the new edge, every tile whose contents changed (new
 * full tiles and the new partial tiles, lowest level first) and the new root hash. Costs about
 * one SHA-256 per leaf beyond the leaf hash itself.
 */
export function appendLeaves(
  edge: TileEdge,
  leafHashes: readonly Uint8Array[],
): { edge: TileEdge; tiles: TileData[]; rootHash: Uint8Array } {
  for (const h of leafHashes) {
    if (h.length !== HASH_SIZE) throw new TlogError('malformed', `leaf hash of ${h.length} bytes`);
  }
  const treeSize = edge.treeSize + leafHashes.length;
  checkIndex(treeSize, 'tree size');
  const tiles: TileData[] = [];
  const partials: (readonly Uint8Array[])[] = [];
  let items: readonly Uint8Array[] = leafHashes;
  let oldCount = edge.treeSize; // hashes at this tile level before the append
  // One pass per level that has hashes after the append: each level's completed tiles become
  // the next level's new hashes.
  for (let level = 0; oldCount > 0 || items.length > 0; level++) {
    const old = edge.partials[level] ?? [];
    if (old.length !== oldCount % TILE_WIDTH) {
      throw new Error(`bug: edge level ${level} has ${old.length} hashes for count ${oldCount}`);
    }
    if (items.length === 0) {
      partials.push(old);
    } else {
      const firstTile = Math.floor(oldCount / TILE_WIDTH);
      const hashes = [...old, ...items];
      const completed: Uint8Array[] = [];
      let rest: Uint8Array[] = [];
      for (let at = 0; at < hashes.length; at += TILE_WIDTH) {
        const chunk = hashes.slice(at, at + TILE_WIDTH);
        const tile = { level, index: firstTile + at / TILE_WIDTH, width: chunk.length };
        tiles.push({ tile, data: concatHashes(chunk) });
        if (chunk.length === TILE_WIDTH) completed.push(subtreeHash(chunk));
        else rest = chunk;
      }
      partials.push(rest);
      items = completed;
    }
    oldCount = Math.floor(oldCount / TILE_WIDTH);
  }
  const next = { treeSize, partials };
  return { edge: next, tiles, rootHash: edgeRootHash(next) };
}

/**
 * The root hash of the tree an edge describes. Every complete subtree in the root's
 * decomposition lies in the partial tile of its level, so the edge alone suffices.
 */
export function edgeRootHash(edge: TileEdge): Uint8Array {
  if (edge.treeSize === 0) return EMPTY_ROOT;
  const pieces = rangeNodes(0, edge.treeSize).map((node) => {
    const level = Math.floor(node.level / TILE_HEIGHT);
    const count = 2 ** (node.level % TILE_HEIGHT);
    const first = node.index * count; // at Merkle level 8·level
    const offset = first % TILE_WIDTH;
    const partial = edge.partials[level] ?? [];
    if (offset + count > partial.length) throw new Error('bug: root piece outside the edge');
    return subtreeHash(partial.slice(offset, offset + count));
  });
  return foldRange(pieces);
}
