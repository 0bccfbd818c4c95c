// Parse and validate the list of objects to fetch, reporting every problem at once.
import type { ObjectEncoding, ObjectFormat, ObjectSpec, ObjectType } from './object-spec.js';
import { quote } from './quote.js';

const FIELDS = [
  'objectName',
  'objectType',
  'objectVersion',
  'objectAlias',
  'objectFormat',
  'objectEncoding',
  'filePermission',
  'objectVersionHistory',
  'optional',
] as const;

const OBJECT_NAME = /^[0-9A-Za-z-]{1,127}$/;
const OBJECT_VERSION = /^[0-9A-Za-z]{1,64}$/;
const FILE_PERMISSION = /^0?[0-7]{3}$/;
const TYPES: readonly ObjectType[] = ['secret', 'key', 'cert'];
const FORMATS: readonly ObjectFormat[] = ['pem', 'pfx'];
const ENCODINGS: readonly ObjectEncoding[] = ['utf-8', 'base64', 'hex'];
const DEFAULT_PERMISSION = 0o644;

/**
 * Limits of one object list, checked before the work they bound: what a pod author or a namespace
 * owner writes becomes webhook CPU, init-container reads and files in a 16 MiB in-memory volume.
 */
export const MAX_OBJECTS = 256;
export const MAX_VERSION_HISTORY = 1024;
/** Files one list may ask for: every object's versions counted. */
export const MAX_FILES = 1024;

export interface ParsedObjects {
  objects: ObjectSpec[];
  /** One line per problem, each naming the object, the field, the value and what is allowed. */
  problems: string[];
}

/** Go's strconv.ParseBool, which the Azure provider uses; undefined when not a boolean. */
export function parseGoBool(value: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  return undefined;
}

/** Format a mode as the octal string users write, e.g. 0o440 → "0440"; a number that is no mode, as it is. */
export function formatMode(mode: number): string {
  if (!Number.isInteger(mode) || mode < 0) return String(mode);
  return `0${mode.toString(8).padStart(3, '0')}`;
}

/**
 * Validate a decoded list of objects (from JSON or YAML). An empty list is valid, as for the provider:
 * nothing is written (the webhook warns about it). Field values are read as strings, as
 * the Azure provider reads them, and trimmed.
 */
export function parseObjects(raw: unknown): ParsedObjects {
  if (!Array.isArray(raw)) {
    return { objects: [], problems: ['the object list must be a list (JSON or YAML array) of objects'] };
  }
  if (raw.length > MAX_OBJECTS) {
    return { objects: [], problems: [`the object list has ${raw.length} objects; at most ${MAX_OBJECTS} are allowed in one list`] };
  }
  const objects: ObjectSpec[] = [];
  const problems: string[] = [];
  raw.forEach((item, index) => {
    const result = parseObject(item, index);
    problems.push(...result.problems);
    if (result.object !== undefined) objects.push(result.object);
  });
  if (problems.length === 0) problems.push(...fileCountProblems(objects), ...outputClashes(objects));
  return { objects, problems };
}

/** The paths an object writes, relative to the output directory. */
export function outputPaths(object: ObjectSpec): string[] {
  if (object.objectVersionHistory === 1) return [object.objectAlias];
  return Array.from({ length: object.objectVersionHistory }, (_, i) => `${object.objectAlias}/${i}`);
}

function parseObject(item: unknown, index: number): { object?: ObjectSpec; problems: string[] } {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) {
    return { problems: [`object ${index}: must be a map of fields (objectName, objectType, ...), got ${describe(item)}`] };
  }
  const record = item as Record<string, unknown>;
  const name = fieldString(record, 'objectName');
  const where = `object ${index}${name ? ` ${quote(name, 127)}` : ''}`;
  const problems: string[] = [];
  const problem = (field: string, value: string, allowed: string): void => {
    problems.push(`${where}: ${field} ${quote(value)} ${allowed}`);
  };

  for (const key of Object.keys(record)) {
    if ((FIELDS as readonly string[]).includes(key)) continue;
    const close = FIELDS.find((f) => f.toLowerCase() === key.toLowerCase());
    problems.push(`${where}: unknown field "${key}"${close ? `; did you mean "${close}"?` : `; allowed fields: ${FIELDS.join(', ')}`}`);
  }
  for (const key of FIELDS) {
    const value = record[key];
    if (value !== undefined && value !== null && typeof value === 'object') {
      problems.push(`${where}: ${key} must be a single value, got ${describe(value)}`);
    }
  }
  if (problems.length > 0) return { problems };

  if (name === '') problems.push(`${where}: objectName is required (the name of the secret, key or certificate in Key Vault)`);
  else if (!OBJECT_NAME.test(name)) problem('objectName', name, 'must be 1-127 letters, digits and hyphens (a Key Vault object name)');

  // Compared case-insensitively, quoted as written.
  const typeValue = fieldString(record, 'objectType');
  const objectType = TYPES.find((t) => t === typeValue.toLowerCase());
  if (typeValue === '') problems.push(`${where}: objectType is required: one of ${TYPES.join(', ')}`);
  else if (objectType === undefined) problem('objectType', typeValue, `is not one of ${TYPES.join(', ')}`);

  const objectVersion = fieldString(record, 'objectVersion');
  if (objectVersion !== '' && !OBJECT_VERSION.test(objectVersion)) {
    problem('objectVersion', objectVersion, 'must be a Key Vault version id (letters and digits), or empty for the latest');
  }

  const objectAlias = fieldString(record, 'objectAlias') || name;
  const aliasProblem = objectAlias === '' ? undefined : checkAlias(objectAlias);
  if (aliasProblem !== undefined) problem('objectAlias', objectAlias, aliasProblem);

  const formatValue = fieldString(record, 'objectFormat') || 'pem';
  const objectFormat = FORMATS.find((f) => f === formatValue.toLowerCase());
  if (objectFormat === undefined) problem('objectFormat', formatValue, `is not one of ${FORMATS.join(', ')}`);
  else if (objectFormat === 'pfx' && objectType !== undefined && objectType !== 'secret') {
    problem('objectFormat', formatValue, `is only allowed with objectType secret (the secret that backs a certificate), not ${objectType}`);
  }

  const encodingValue = fieldString(record, 'objectEncoding') || 'utf-8';
  const objectEncoding = ENCODINGS.find((e) => e === encodingValue.toLowerCase());
  if (objectEncoding === undefined) problem('objectEncoding', encodingValue, `is not one of ${ENCODINGS.join(', ')}`);
  else if (objectEncoding !== 'utf-8' && objectType !== undefined && objectType !== 'secret') {
    problem('objectEncoding', encodingValue, `is only allowed with objectType secret, not ${objectType}`);
  } else if (objectEncoding === 'hex' && objectFormat === 'pfx') {
    problem('objectEncoding', encodingValue, 'cannot be combined with objectFormat pfx; use base64 (binary PFX) or utf-8 (base64 text)');
  }

  const permissionValue = fieldString(record, 'filePermission');
  const filePermission = permissionValue === '' ? DEFAULT_PERMISSION : parsePermission(permissionValue);
  if (filePermission === undefined) {
    problem('filePermission', permissionValue, 'must be an octal file mode such as "0440" or "0644" (no setuid, setgid or sticky bits)');
  }

  const historyValue = fieldString(record, 'objectVersionHistory');
  const objectVersionHistory = parseHistory(historyValue);
  if (objectVersionHistory === undefined) {
    problem('objectVersionHistory', historyValue, `must be a whole number of versions from 0 to ${MAX_VERSION_HISTORY} (0 and 1 both mean one version)`);
  }

  const optionalValue = fieldString(record, 'optional');
  const optional = optionalValue === '' ? false : parseGoBool(optionalValue);
  if (optional === undefined) problem('optional', optionalValue, 'must be true or false');

  if (problems.length > 0 || objectType === undefined || objectFormat === undefined || objectEncoding === undefined) {
    return { problems };
  }
  return {
    problems,
    object: {
      objectName: name,
      objectType,
      objectVersion,
      objectAlias: normalizeAlias(objectAlias),
      objectFormat,
      objectEncoding,
      filePermission: filePermission ?? DEFAULT_PERMISSION,
      objectVersionHistory: objectVersionHistory ?? 1,
      optional: optional ?? false,
    },
  };
}

function fieldString(record: Record<string, unknown>, key: string): string {
  const value = record[key];
  if (value === undefined || value === null) return '';
  return String(value).trim();
}

// As the provider reads it: any value up to 1 is one version. Digits are checked before the number is made.
function parseHistory(value: string): number | undefined {
  if (value === '') return 1;
  if (!/^[0-9]{1,5}$/.test(value)) return undefined;
  const count = Number(value);
  return count > MAX_VERSION_HISTORY ? undefined : Math.max(count, 1);
}

function parsePermission(value: string): number | undefined {
  return FILE_PERMISSION.test(value) ? parseInt(value, 8) : undefined;
}

function checkAlias(alias: string): string | undefined {
  if (alias.startsWith('/')) return 'must be a path relative to the mount path, not absolute';
  if (alias.includes('\\')) return 'must use "/" to separate folders';
  if (alias.includes('\0')) return 'must not contain NUL';
  const segments = alias.replace(/\/+$/, '').split('/');
  if (segments.some((s) => s === '..')) return 'must not contain ".." (files stay inside the mount path)';
  if (segments.some((s) => s === '' || s === '.')) return 'must not contain empty or "." path segments';
  if (segments[0]?.startsWith('..')) return 'must not start with ".." (reserved for the atomic-update layout)';
  if (alias.length > 253) return 'is too long (at most 253 characters)';
  return undefined;
}

function normalizeAlias(alias: string): string {
  return alias.replace(/\/+$/, '');
}

function fileCountProblems(objects: ObjectSpec[]): string[] {
  const files = objects.reduce((sum, object) => sum + object.objectVersionHistory, 0);
  if (files <= MAX_FILES) return [];
  return [`the objects ask for ${files} files (objectVersionHistory counts each version); at most ${MAX_FILES} are allowed in one list`];
}

/** What one object writes: the file `path`, or with version history the files `path/0` … `path/count-1`. */
interface OutputRoot {
  owner: string;
  path: string;
  count: number;
}

/**
 * Two objects must not write the same file, nor a file where another needs a folder. Linear in the
 * length of the aliases: a history folder is checked by index, never by listing its files.
 */
function outputClashes(objects: ObjectSpec[]): string[] {
  const roots = new Map<string, OutputRoot>();
  const problems: string[] = [];
  for (const object of objects) {
    const root = { owner: object.objectName, path: object.objectAlias, count: object.objectVersionHistory };
    const other = roots.get(root.path);
    if (other === undefined) roots.set(root.path, root);
    else problems.push(sameRootClash(other, root));
  }
  for (const root of roots.values()) {
    const clash = clashAbove(root, roots);
    if (clash !== undefined) problems.push(clash);
  }
  return problems;
}

function sameRootClash(first: OutputRoot, second: OutputRoot): string {
  if (first.count > 1 && second.count > 1) return bothWrite(first.owner, second.owner, firstFile(first));
  if (first.count === 1 && second.count === 1) return bothWrite(first.owner, second.owner, first.path);
  const [file, folder] = first.count === 1 ? [first, second] : [second, first];
  return fileNeededAsFolder(file.owner, file.path, folder.owner, firstFile(folder));
}

// The first folder above `root` that another object writes as a file (or as one of its versions).
function clashAbove(root: OutputRoot, roots: Map<string, OutputRoot>): string | undefined {
  const segments = root.path.split('/');
  let prefix = '';
  for (let i = 0; i < segments.length - 1; i++) {
    prefix = i === 0 ? (segments[0] as string) : `${prefix}/${segments[i] as string}`;
    const above = roots.get(prefix);
    if (above === undefined) continue;
    if (above.count === 1) return fileNeededAsFolder(above.owner, prefix, root.owner, firstFile(root));
    const index = segments[i + 1] as string;
    if (!isIndexBelow(index, above.count)) continue;
    const version = `${prefix}/${index}`;
    const isThatFile = i + 2 === segments.length && root.count === 1;
    return isThatFile ? bothWrite(above.owner, root.owner, version) : fileNeededAsFolder(above.owner, version, root.owner, firstFile(root));
  }
  return undefined;
}

function firstFile(root: OutputRoot): string {
  return root.count === 1 ? root.path : `${root.path}/0`;
}

function isIndexBelow(segment: string, count: number): boolean {
  return /^(0|[1-9][0-9]{0,4})$/.test(segment) && Number(segment) < count;
}

function bothWrite(first: string, second: string, path: string): string {
  return `objects "${first}" and "${second}" both write "${path}"; give one of them a different objectAlias`;
}

function fileNeededAsFolder(fileOwner: string, file: string, folderOwner: string, nested: string): string {
  return `object "${fileOwner}" writes the file "${file}" but object "${folderOwner}" needs it as a folder for "${nested}"; change one objectAlias`;
}

/** The list as the init container reads it (AKV_INJECTOR_OBJECTS): every field written out, so its job is explicit in the pod spec. */
export function serializeObjects(objects: readonly ObjectSpec[]): string {
  return JSON.stringify(
    objects.map((object) => ({
      objectName: object.objectName,
      objectType: object.objectType,
      objectVersion: object.objectVersion,
      objectAlias: object.objectAlias,
      objectFormat: object.objectFormat,
      objectEncoding: object.objectEncoding,
      filePermission: formatMode(object.filePermission),
      objectVersionHistory: object.objectVersionHistory,
      optional: object.optional,
    })),
  );
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'a map' : `${typeof value} ${quote(String(value))}`;
}
