// Values quoted in messages: the start of them, so a 2 MiB annotation still makes a short denial.

/** `value` as a JSON string, cut to `max` characters with its length said when longer. */
export function quote(value: string, max = 100): string {
  if (value.length <= max) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, max))}… (${value.length} characters)`;
}
