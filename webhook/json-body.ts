// The admission listener's JSON body parser: the count of values bounded before JSON.parse builds them.
//
// Memory follows the number of values more than the bytes: `[[],[],…]` costs ~40 bytes a value for 3 bytes of
// JSON, a map of short keys ~190 for 7, so 4 MiB of them would take more than the webhook's whole memory limit
// (measured: +100 MiB and more for one such body). Real pods hold a value per ~21 bytes of JSON (the fixtures),
// so even the API server's largest request (3 MiB) of real structure stays under the bound; a 3 MiB annotation
// is one value.
//
// JSON.parse, unlike fastify's default parser, keeps "__proto__" and "constructor" keys as what JSON.parse
// always makes them: own data properties, never a prototype. They are a pod's data (unvalidated maps such as a
// CSI volume's volumeAttributes) and go to the mutator, which reads own properties only.

/** Values (array items and object members) in one request body, at most. */
export const MAX_JSON_VALUES = 200_000;

export type ParsedBody = { ok: true; value: unknown } | { ok: false; status: 400 | 413; message: string };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;

/**
 * Containers opened plus separators between values, outside strings: an upper bound on the values of valid JSON
 * (within one of it). Stops counting once past `stopAfter`.
 */
export function countJsonValues(body: Uint8Array, stopAfter: number = Number.POSITIVE_INFINITY): number {
  let count = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i];
    if (inString) {
      if (byte === BACKSLASH) i++;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === COMMA || byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      count++;
      if (count > stopAfter) return count;
    }
  }
  return count;
}

const EMPTY = 'the body is empty: expected an AdmissionReview (admission.k8s.io/v1)';

/** The body as JSON, or why not (400 empty or not JSON, 413 too many values); messages never quote the body. */
export function parseJsonBody(body: Buffer, maxValues: number = MAX_JSON_VALUES): ParsedBody {
  if (body.length === 0) return { ok: false, status: 400, message: EMPTY };
  // Every value takes at least two bytes with its separator: a shorter body cannot pass the bound, skip the scan.
  if (body.length > 2 * maxValues && countJsonValues(body, maxValues) > maxValues) {
    return {
      ok: false,
      status: 413,
      message: `the body holds more than ${maxValues} JSON values (array items and object members): no pod has that many, and each costs memory`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return { ok: false, status: 400, message: 'the body is not valid JSON' };
  }
  return value === null ? { ok: false, status: 400, message: EMPTY } : { ok: true, value };
}
