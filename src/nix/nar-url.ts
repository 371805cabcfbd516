/** Where a narinfo's NAR URL may point: the one rule every client of a binary cache follows. */

/**
 * Where a NAR URL (from a narinfo, attacker-controlled) may point, given its upstream cache:
 * the same scheme, host and port, with no credentials; for a `file://` cache, a file below the
 * cache's directory. Returns the absolute URL, or throws saying why not — a narinfo must never
 * send a client (the proxy, the monitor) to another host or port (a request forgery into its
 * network) or anywhere else on its disk.
 */
export function confineNarUrl(upstream: string, narUrl: string): string {
  const base = new URL(`${upstream}/`);
  let url: URL;
  try {
    url = new URL(narUrl, base);
  } catch {
    throw new Error(`narinfo URL ${JSON.stringify(narUrl.slice(0, 200))} is not a URL`);
  }
  if (url.protocol !== base.protocol) throw new Error(`narinfo URL leaves ${base.protocol}`);
  if (url.host !== base.host) throw new Error('narinfo URL points to another host or port');
  if (url.username !== '' || url.password !== '') throw new Error('narinfo URL has credentials');
  if (base.protocol === 'file:' && !url.pathname.startsWith(base.pathname))
    throw new Error("narinfo URL points outside the cache's directory");
  return url.toString();
}
