/**
 * Fields read straight from an entry already known canonical — parsed by {@link parseEntry}
 * when it was verified, as every entry in a monitor's index was — without parsing it again:
 * each is a line of the fixed layout in docs/entry.md. Not for entries from anywhere else.
 */

/** The store path: the second line is `store-path <path>`. */
export function canonicalStorePath(entry: string): string {
  const start = entry.indexOf('\n') + 1;
  return entry.slice(entry.indexOf(' ', start) + 1, entry.indexOf('\n', start));
}

/** The references (base names): the `reference <base name>` lines. */
export function canonicalReferences(entry: string): string[] {
  return entry
    .split('\n')
    .filter((line) => line.startsWith('reference '))
    .map((line) => line.slice('reference '.length));
}

/** The deriver's base name, when the last line is `deriver <base name>`. */
export function canonicalDeriver(entry: string): string | undefined {
  const at = entry.lastIndexOf('\nderiver ');
  return at < 0 ? undefined : entry.slice(at + '\nderiver '.length, entry.indexOf('\n', at + 1));
}
