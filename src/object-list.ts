// Decode an object list as users write it: a YAML or JSON list, or the CSI driver's `array:` of YAML strings.
import { parse } from 'yaml';
import { firstLine } from './quote.js';

export type DecodedList = { ok: true; items: unknown[] } | { ok: false; problem: string };

/**
 * The largest object list read, in UTF-8 bytes: parsing YAML costs about a microsecond a byte of the
 * webhook's event loop, and a list of the most objects allowed (256) fits in far less.
 */
export const MAX_OBJECT_LIST_BYTES = 64 * 1024;

/**
 * Deepest nesting of flow collections (`[`, `{`) read. An object list needs three levels; the YAML
 * parser recurses per level, and V8 aborts the whole process (a fatal out-of-memory in its regular
 * expression compiler, not a catchable error) when that recursion nears the stack limit.
 */
const MAX_FLOW_DEPTH = 64;

/**
 * Every scalar is read as a string (YAML's failsafe schema), as the Azure provider reads its fields:
 * `filePermission: 0440` stays "0440", never the number 288.
 */
export function decodeObjectList(text: string): DecodedList {
  // A string of n characters has at least n bytes: the cheap test first.
  if (text.length > MAX_OBJECT_LIST_BYTES || Buffer.byteLength(text) > MAX_OBJECT_LIST_BYTES) {
    return { ok: false, problem: `is larger than ${MAX_OBJECT_LIST_BYTES} bytes (64 KiB), the most akv-injector reads; list fewer objects` };
  }
  if (flowDepth(text) > MAX_FLOW_DEPTH) {
    return { ok: false, problem: `nests lists or maps more than ${MAX_FLOW_DEPTH} deep; an object list needs three levels` };
  }
  let value: unknown;
  try {
    value = parse(text, { schema: 'failsafe', uniqueKeys: true });
  } catch (error) {
    return { ok: false, problem: `is not valid YAML or JSON (${firstLine((error as Error).message)})` };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'array' in value) {
    const array = (value as { array: unknown }).array;
    // "array:" with no items is YAML null: the provider reads it as no object, and so do we.
    if (array === null || array === '') return { ok: true, items: [] };
    if (!Array.isArray(array)) return { ok: false, problem: 'has an "array:" that is not a list' };
    return decodeCsiArray(array);
  }
  if (!Array.isArray(value)) {
    return {
      ok: false,
      problem: 'must be a list of objects, e.g. [{"objectName": "db-password", "objectType": "secret"}], or the CSI driver\'s "array:" form',
    };
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
    // Escapes in the outer document can spell brackets the first check did not see.
    if (flowDepth(entry) > MAX_FLOW_DEPTH) {
      return { ok: false, problem: `has an "array:" item ${index} that nests lists or maps more than ${MAX_FLOW_DEPTH} deep` };
    }
    try {
      items.push(parse(entry, { schema: 'failsafe' }));
    } catch (error) {
      return { ok: false, problem: `has an "array:" item ${index} that is not valid YAML (${firstLine((error as Error).message)})` };
    }
  }
  return { ok: true, items };
}

// An upper bound: brackets inside quoted strings count too, and closing ones are not matched by kind.
function flowDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if ((c === 0x5d || c === 0x7d) && depth > 0) depth--;
  }
  return deepest;
}
