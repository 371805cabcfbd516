/** How numbers, times and sizes read on the dashboard's pages. */

/** 1234567 → "1,234,567". */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** A share as a percentage with one decimal, or "—" when there is nothing to share. */
export function percent(part: number, whole: number): string {
  return whole === 0 ? '—' : `${((100 * part) / whole).toFixed(1)}%`;
}

/** Bytes in the largest unit that keeps the number at least 1 (B, KiB, MiB, GiB). */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`;
}

/** A duration in ms as the largest whole unit: "12 s", "5 min", "3 h", "2 d". */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} d`;
}

/** A time as UTC, to the second: "2026-12-03 18:20:05 UTC". */
export function utc(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}
