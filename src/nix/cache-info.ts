/** `nix-cache-info` (`text/x-nix-cache-info`): a binary cache's store directory and priority. */
import { NixError } from './errors.js';

/** What a cache says about itself. */
export interface CacheInfo {
  readonly storeDir: string;
  readonly wantMassQuery?: boolean;
  /** Lower is tried first; cache.nixos.org uses 40. */
  readonly priority?: number;
}

/**
 * Parses `nix-cache-info`: `Key: value` lines; `StoreDir` required; `WantMassQuery` 0 or 1;
 * `Priority` a decimal; unknown keys ignored, as Nix does.
 */
export function parseCacheInfo(text: string): CacheInfo {
  if (text.length > 64 * 1024) throw new NixError('limit', 'nix-cache-info too large');
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new NixError('malformed', `nix-cache-info: bad line ${JSON.stringify(line)}`);
    fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  const storeDir = fields.get('StoreDir');
  if (storeDir === undefined) throw new NixError('malformed', 'nix-cache-info has no StoreDir');
  const info: { storeDir: string; wantMassQuery?: boolean; priority?: number } = { storeDir };
  const mass = fields.get('WantMassQuery');
  if (mass !== undefined) {
    if (mass !== '0' && mass !== '1')
      throw new NixError('malformed', 'WantMassQuery is not 0 or 1');
    info.wantMassQuery = mass === '1';
  }
  const priority = fields.get('Priority');
  if (priority !== undefined) {
    if (!/^(?:0|[1-9][0-9]{0,8})$/.test(priority)) throw new NixError('malformed', 'bad Priority');
    info.priority = Number(priority);
  }
  return info;
}

/** Formats `nix-cache-info` as Nix's own caches write it. */
export function formatCacheInfo(info: CacheInfo): string {
  let text = `StoreDir: ${info.storeDir}\n`;
  if (info.wantMassQuery !== undefined) text += `WantMassQuery: ${info.wantMassQuery ? 1 : 0}\n`;
  if (info.priority !== undefined) text += `Priority: ${info.priority}\n`;
  return text;
}
