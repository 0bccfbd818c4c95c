// What messages quote: the start of a value, the first line of an error, so a 2 MiB annotation still makes a short denial.

/** `value` as a JSON string, cut to `max` characters with its length said when longer. */
export function quote(value: string, max = 100): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}

/** The first line of a message, e.g. a parser's, whose later lines point into the input. */
export function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
