// A kept template's request body, byte for byte, with the places where a replica's body may say something else: a
// replica is then told from its bytes, and answered, without parsing it (replicas.ts keeps the answer).
//
// The API server writes every AdmissionReview of one kind in one order, so the bodies of a ReplicaSet's pods differ
// only in some string values: the request's uid, the pod's generated names, its labels (the pod-template hash), its
// owner's name and uid, a managed-fields timestamp, and the name of its ServiceAccount token volume (replicas.ts).
// A body equal to the template's everywhere else, with plain text in those places, parses to the template's request
// with other values there and nowhere else: the same admission, answered for its own uid. Anything else, a byte
// moved, a key added, an escape in a value, is not recognized, and goes the whole way.

/** A place a replica may differ in: the request's uid (echoed), a value the answer does not read, the token volume's name. */
const UID = 0;
const FREE = 1;
const TOKEN = 2;

/** A body kept as a template: its bytes, and the string values a replica may have otherwise (content offsets, quotes excluded). */
export interface Imprint {
  readonly body: Buffer;
  /** [start, end, kind] for each place, in body order. */
  readonly spans: Int32Array;
  /** hintOf(body), or '' when those bytes are not all fixed: the cache's index. */
  readonly hint: string;
}

/** A recognized replica's own values. */
export interface Replica {
  uid: string;
  /** request.name, the pod's name and its generateName where they are places of the imprint; undefined where fixed. */
  names: [string | undefined, string | undefined, string | undefined];
}

/** Bodies larger than this are not kept: ordinary pods are 2–20 KiB, and a template's bytes stay in memory. */
export const MAX_IMPRINT_BYTES = 64 * 1024;

/**
 * A place's value is this long at most: Kubernetes' names are 253 characters at most, label values 63, uids 36. A
 * longer one is fixed bytes of its template, and a replica's longer one makes it no replica, so comparing a body
 * with a template costs at most the template's length and this much per place, whatever the body holds.
 */
export const MAX_PLACE_BYTES = 256;

/** Nesting at most: a pod nests about 12 levels in its AdmissionReview. */
const MAX_DEPTH = 64;

/** The volume the ServiceAccount admission plugin adds: `kube-api-access-` and 5 characters of its random alphabet. */
export const TOKEN_VOLUME_NAME = /^kube-api-access-[a-z0-9]{5}$/;

/** Metadata values a pod's admission never reads (replicas.ts): its identity and timestamps. Its names are places too, told apart for the log line. */
const METADATA_FREE = new Set(['uid', 'resourceVersion', 'creationTimestamp']);
const CONTAINER_LISTS = new Set(['containers', 'initContainers', 'ephemeralContainers']);

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Plain text: printable ASCII without a quote or a backslash, so the bytes are the value and JSON.stringify adds only quotes. */
function plain(byte: number): boolean {
  return byte >= 0x20 && byte <= 0x7e && byte !== QUOTE && byte !== BACKSLASH;
}

/** Where a hint is read: the first annotations object up to its first `}`, or without one the first image. */
const HINT_SOURCES: ReadonlyArray<{ marker: Buffer; end: number }> = [
  { marker: Buffer.from('"annotations":{', 'latin1'), end: 0x7d },
  { marker: Buffer.from('"image":"', 'latin1'), end: QUOTE },
];
const MAX_HINT_BYTES = 1024;

/**
 * Where to look for a body's templates: the bytes of its pod's annotations (all of them, unless a value holds a `}`),
 * or of its first image when it has none (or none but `{}`). Fixed bytes of a template, so its replicas find it; '' with neither.
 */
export function hintOf(body: Buffer): string {
  const [start, end] = hintRange(body);
  return body.toString('latin1', start, end);
}

function hintRange(body: Buffer): [number, number] {
  for (const { marker, end } of HINT_SOURCES) {
    const start = body.indexOf(marker);
    if (start < 0) continue;
    const stop = body.indexOf(end, start + marker.length);
    // Empty annotations tell templates apart no better than none.
    if (stop === start + marker.length) continue;
    return [start, Math.min(stop < 0 ? body.length : stop + 1, start + MAX_HINT_BYTES)];
  }
  return [0, 0];
}

/**
 * The imprint of a request body that parsed to a request with `uid`, whose pod's token volume is `tokenVolume`; or
 * undefined when its replicas cannot be told from it: too large, too deep, a key with an escape or twice in one
 * object, a uid that is not plain text in its one place.
 */
export function imprint(body: Buffer, uid: string, tokenVolume: string | undefined): Imprint | undefined {
  if (body.length > MAX_IMPRINT_BYTES) return undefined;
  const spans = placesOf(body, tokenVolume);
  if (spans === undefined) return undefined;
  let uids = 0;
  for (let i = 0; i < spans.length; i += 3) {
    if (spans[i + 2] !== UID) continue;
    uids++;
    if (body.toString('latin1', spans[i] as number, spans[i + 1] as number) !== uid) return undefined;
  }
  if (uids !== 1) return undefined;
  const own = Buffer.allocUnsafeSlow(body.length);
  body.copy(own);
  // The hint must be fixed bytes for replicas to share it; the walk puts no place there, but say so.
  const fixed = !overlaps(spans, ...hintRange(own));
  return { body: own, spans: Int32Array.from(spans), hint: fixed ? hintOf(own) : '' };
}

function overlaps(spans: number[], from: number, to: number): boolean {
  for (let i = 0; i < spans.length; i += 3) if ((spans[i] as number) < to && (spans[i + 1] as number) > from) return true;
  return false;
}

/**
 * `body` as a replica of `imprint`: equal to its body but in its places, each of them plain text (a uid not empty,
 * every token volume name the same one, of that volume's pattern); undefined otherwise.
 */
export function matchImprint(imprint: Imprint, body: Buffer): Replica | undefined {
  const template = imprint.body;
  const { spans } = imprint;
  let from = 0;
  let at = 0;
  let uid = '';
  const names: Replica['names'] = [undefined, undefined, undefined];
  let tokenStart = -1;
  let tokenEnd = -1;
  for (let i = 0; i < spans.length; i += 3) {
    const start = spans[i] as number;
    const fixed = start - from;
    if (at + fixed > body.length || body.compare(template, from, start, at, at + fixed) !== 0) return undefined;
    at += fixed;
    const valueStart = at;
    const limit = Math.min(body.length, at + MAX_PLACE_BYTES);
    while (at < limit && plain(body[at] as number)) at++;
    if (body[at] !== QUOTE) return undefined;
    const kind = spans[i + 2];
    if (kind === UID) {
      if (at === valueStart) return undefined;
      uid = body.toString('latin1', valueStart, at);
    } else if (kind === TOKEN) {
      if (tokenStart < 0) {
        if (!TOKEN_VOLUME_NAME.test(body.toString('latin1', valueStart, at))) return undefined;
        tokenStart = valueStart;
        tokenEnd = at;
      } else if (at - valueStart !== tokenEnd - tokenStart || body.compare(body, tokenStart, tokenEnd, valueStart, at) !== 0) {
        return undefined;
      }
    } else if (kind !== FREE) {
      names[(kind as number) - REQUEST_NAME] = body.toString('latin1', valueStart, at);
    }
    from = spans[i + 1] as number;
  }
  if (body.length - at !== template.length - from || body.compare(template, from, template.length, at, body.length) !== 0) return undefined;
  return { uid, names };
}

/** FREE places that hold a name of the pod, told apart for the log line. */
const REQUEST_NAME = 3;
const METADATA_NAME = 4;
const GENERATE_NAME = 5;

/**
 * The places of a valid JSON body (it parsed): [start, end, kind] of each plain string value in a place a replica may
 * differ in. Undefined for a body whose structure this walk would not follow as JSON.parse does: a key with an escape
 * (its bytes are not its name) or twice in one object (JSON.parse keeps the last), or nesting past MAX_DEPTH.
 */
function placesOf(body: Buffer, tokenVolume: string | undefined): number[] | undefined {
  const spans: number[] = [];
  // The path to the current value: object keys and array indexes, one per level.
  const path: Array<string | number> = [];
  const keys: Array<Set<string> | undefined> = [];
  let expectKey = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i] as number;
    if (byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x3a) continue;
    if (byte === 0x7b || byte === 0x5b) {
      if (path.length >= MAX_DEPTH) return undefined;
      const object = byte === 0x7b;
      path.push(object ? '' : 0);
      keys.push(object ? new Set() : undefined);
      expectKey = object;
    } else if (byte === 0x7d || byte === 0x5d) {
      path.pop();
      keys.pop();
      expectKey = false;
    } else if (byte === 0x2c) {
      const level = path.length - 1;
      const inObject = keys[level] !== undefined;
      if (!inObject) path[level] = (path[level] as number) + 1;
      expectKey = inObject;
    } else if (byte === QUOTE) {
      const start = i + 1;
      let isPlain = true;
      for (i = start; body[i] !== QUOTE; i++) {
        if (i >= body.length) return undefined;
        if (body[i] === BACKSLASH) {
          isPlain = false;
          i++;
        } else if (!plain(body[i] as number)) isPlain = false;
      }
      if (expectKey) {
        const key = body.toString('latin1', start, i);
        const seen = keys[keys.length - 1] as Set<string>;
        if (!isPlain || seen.has(key)) return undefined;
        seen.add(key);
        path[path.length - 1] = key;
        expectKey = false;
        continue;
      }
      if (!isPlain || i - start > MAX_PLACE_BYTES) continue;
      const kind = placeKind(path, tokenVolume !== undefined && body.toString('latin1', start, i) === tokenVolume);
      if (kind !== undefined) spans.push(start, i, kind);
    }
    // Numbers, true, false, null: bytes that stay as they are.
  }
  return spans;
}

/** The kind of place of a plain string value at `path` (from the AdmissionReview), or undefined for a fixed one. */
function placeKind(path: ReadonlyArray<string | number>, isTokenVolume: boolean): number | undefined {
  if (path[0] !== 'request') return undefined;
  const depth = path.length;
  if (depth === 2) return path[1] === 'uid' ? UID : path[1] === 'name' ? REQUEST_NAME : undefined;
  if (depth === 3) return path[1] === 'userInfo' && path[2] === 'uid' ? FREE : undefined;
  if (path[1] !== 'object') return undefined;
  if (path[2] === 'metadata') {
    const field = path[3] as string;
    if (depth === 4) return field === 'name' ? METADATA_NAME : field === 'generateName' ? GENERATE_NAME : METADATA_FREE.has(field) ? FREE : undefined;
    if (depth === 5) return field === 'labels' ? FREE : undefined;
    if (depth === 6 && field === 'ownerReferences') return path[5] === 'name' || path[5] === 'uid' ? FREE : undefined;
    if (depth === 6 && field === 'managedFields') return path[5] === 'time' ? FREE : undefined;
    return undefined;
  }
  if (path[2] !== 'spec' || !isTokenVolume) return undefined;
  if (depth === 6 && path[3] === 'volumes' && path[5] === 'name') return TOKEN;
  if (depth === 8 && CONTAINER_LISTS.has(path[3] as string) && path[5] === 'volumeMounts' && path[7] === 'name') return TOKEN;
  return undefined;
}
