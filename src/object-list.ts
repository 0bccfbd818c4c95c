// Decode an object list as users write it: a YAML or JSON list, or the CSI driver's `array:` of YAML strings.
import { parse } from 'yaml';

export type DecodedList = { ok: true; items: unknown[] } | { ok: false; problem: string };

/**
 * The largest object list read, in UTF-8 bytes: parsing YAML costs about a microsecond a byte of the
 * webhook's event loop, and a list of the most objects allowed (256) fits in far less.
 */
export const MAX_OBJECT_LIST_BYTES = 64 * 1024;

/**
 * Every scalar is read as a string (YAML's failsafe schema), as the Azure provider reads its fields:
 * `filePermission: 0440` stays "0440", never the number 288.
 */
export function decodeObjectList(text: string): DecodedList {
  // A string of n characters has at least n bytes: the cheap test first.
  if (text.length > MAX_OBJECT_LIST_BYTES || Buffer.byteLength(text) > MAX_OBJECT_LIST_BYTES) {
    return { ok: false, problem: `is larger than ${MAX_OBJECT_LIST_BYTES} bytes (64 KiB), the most akv-injector reads; list fewer objects` };
  }
  let value: unknown;
  try {
    value = parse(text, { schema: 'failsafe', uniqueKeys: true });
  } catch (error) {
    return { ok: false, problem: `is not valid YAML or JSON (${firstLine((error as Error).message)})` };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'array' in value) {
    const array = (value as { array: unknown }).array;
    if (!Array.isArray(array)) return { ok: false, problem: 'has an "array:" that is not a list' };
    return decodeCsiArray(array);
  }
  if (!Array.isArray(value)) {
    return { ok: false, problem: 'must be a list of objects, e.g. [{"objectName": "db-password", "objectType": "secret"}], or the CSI driver\'s "array:" form' };
  }
  return { ok: true, items: value };
}

// The CSI form: each item is a YAML document (a string) describing one object.
function decodeCsiArray(array: unknown[]): DecodedList {
  const items: unknown[] = [];
  for (const [index, entry] of array.entries()) {
    if (typeof entry !== 'string') {
      items.push(entry);
      continue;
    }
    try {
      items.push(parse(entry, { schema: 'failsafe' }));
    } catch (error) {
      return { ok: false, problem: `has an "array:" item ${index} that is not valid YAML (${firstLine((error as Error).message)})` };
    }
  }
  return { ok: true, items };
}

function firstLine(text: string): string {
  return text.split('\n')[0] ?? text;
}
