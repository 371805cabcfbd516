/**
 * A rebuilder's work list: what to build, one store path per line, optionally followed by the
 * derivation that produces it (the monitor's `/wanted?format=text` writes exactly this), or a
 * derivation alone (all its outputs). Blank lines and `#` comments are skipped. The text may
 * come from a monitor over the network: it is parsed strictly, with caps.
 */
import { NIX_STORE_DIR, parseStorePath } from '../nix/index.js';

/** The most bytes and items one work list may have. */
export const MAX_WORK_LIST_BYTES = 64 << 20;
export const MAX_WORK_ITEMS = 1_000_000;

/** One thing to rebuild: an output path with the derivation producing it when known. */
export interface WorkItem {
  /** The output path to rebuild; absent for a derivation listed alone (all its outputs). */
  readonly storePath?: string;
  readonly drv?: string;
}

export class WorkListError extends Error {
  override readonly name = 'WorkListError';
}

function path(text: string, line: number, storeDir: string): string {
  try {
    const p = parseStorePath(text, storeDir);
    return `${p.storeDir}/${p.hashPart}-${p.name}`;
  } catch (cause) {
    throw new WorkListError(`line ${line}: ${(cause as Error).message}`, { cause });
  }
}

/** Parses a work list; throws {@link WorkListError} naming the line of the first fault. */
export function parseWorkList(text: string, storeDir = NIX_STORE_DIR): WorkItem[] {
  if (Buffer.byteLength(text) > MAX_WORK_LIST_BYTES)
    throw new WorkListError(`work list larger than ${MAX_WORK_LIST_BYTES} bytes`);
  const items: WorkItem[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const words = line.split(/\s+/);
    if (words.length > 2)
      throw new WorkListError(`line ${i + 1}: want STORE-PATH [DERIVATION] or DERIVATION`);
    const [first = '', second] = words;
    const a = path(first, i + 1, storeDir);
    const b = second === undefined ? undefined : path(second, i + 1, storeDir);
    let item: WorkItem;
    if (a.endsWith('.drv')) {
      if (b !== undefined) throw new WorkListError(`line ${i + 1}: a derivation comes second`);
      item = { drv: a };
    } else {
      if (b !== undefined && !b.endsWith('.drv'))
        throw new WorkListError(`line ${i + 1}: ${b} is not a derivation (.drv)`);
      item = b === undefined ? { storePath: a } : { storePath: a, drv: b };
    }
    const key = item.storePath ?? item.drv ?? '';
    if (seen.has(key)) continue;
    seen.add(key);
    items.push(item);
    if (items.length > MAX_WORK_ITEMS)
      throw new WorkListError(`work list has more than ${MAX_WORK_ITEMS} items`);
  }
  return items;
}
