/**
 * HTML built safely: {@link html} is a tagged template that escapes every value put into it,
 * unless the value is itself {@link Html} (made by `html` or {@link raw}). Every string that
 * reaches a page — origins, store paths, file names in a NAR, finding summaries — came from a
 * log, a cache or a proxy and is hostile: it is only ever inserted escaped.
 */

/** A piece of HTML that is safe to insert as it is. */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

/** A value `html` accepts: text (escaped), a number, HTML, nothing, or a list of these. */
export type HtmlValue = string | number | Html | undefined | null | false | readonly HtmlValue[];

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for an element's contents or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function render(value: HtmlValue): string {
  if (value === undefined || value === null || value === false) return '';
  if (value instanceof Html) return value.text;
  if (typeof value === 'number') return escapeHtml(String(value));
  if (typeof value === 'string') return escapeHtml(value);
  return value.map(render).join('');
}

/** `html\`<td>${text}</td>\``: the template's own text as it is, every value escaped. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** Trusted markup written by this module (never text from outside). */
export function raw(text: string): Html {
  return new Html(text);
}

/** A URL path segment, percent-encoded (for links built from hostile names). */
export function segment(text: string): string {
  return encodeURIComponent(text);
}
