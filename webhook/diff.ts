// The JSON Patch (RFC 6902) from one JSON tree to another: a structural diff, never hand-written paths.
// Made for copy-on-write edits: a subtree `after` shares with `before` by reference is skipped without
// a walk, and added values are referenced, not cloned (the patch is serialized right away).

export type PatchOperation = { op: 'add'; path: string; value: unknown } | { op: 'replace'; path: string; value: unknown } | { op: 'remove'; path: string };

/** Operations that turn `before` into `after`: objects key by key, arrays index by index. */
export function diff(before: unknown, after: unknown): PatchOperation[] {
  const operations: PatchOperation[] = [];
  walk(before, after, '', operations);
  return operations;
}

function walk(before: unknown, after: unknown, path: string, operations: PatchOperation[]): void {
  if (before === after) return;
  if (Array.isArray(before) && Array.isArray(after)) {
    const shared = Math.min(before.length, after.length);
    for (let i = 0; i < shared; i++) if (before[i] !== after[i]) child(before[i], after[i], `${path}/${i}`, operations);
    for (let i = shared; i < after.length; i++) operations.push({ op: 'add', path: `${path}/${i}`, value: after[i] });
    // Remove from the end, so earlier indexes stay valid.
    for (let i = before.length - 1; i >= shared; i--) operations.push({ op: 'remove', path: `${path}/${i}` });
    return;
  }
  if (isObject(before) && isObject(after)) {
    for (const key of Object.keys(before)) {
      if (own(after, key) === undefined && before[key] !== undefined) operations.push({ op: 'remove', path: `${path}/${escape(key)}` });
    }
    for (const key of Object.keys(after)) {
      const value = after[key];
      const old = own(before, key);
      // Shared (or equal) values are the common case of a copy-on-write edit: no path, no walk.
      if (value === old || value === undefined) continue;
      const at = `${path}/${escape(key)}`;
      if (old === undefined) operations.push({ op: 'add', path: at, value });
      else child(old, value, at, operations);
    }
    return;
  }
  operations.push({ op: 'replace', path, value: after });
}

function child(before: unknown, after: unknown, path: string, operations: PatchOperation[]): void {
  const bothContainers = (Array.isArray(before) && Array.isArray(after)) || (isObject(before) && isObject(after));
  if (bothContainers) walk(before, after, path, operations);
  else if (before !== after) operations.push({ op: 'replace', path, value: after });
}

// Own properties only: an annotation named "toString" must not find Object.prototype's.
function own(object: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// RFC 6901: "~" is "~0" and "/" is "~1" in a path segment.
function escape(key: string): string {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;
}
