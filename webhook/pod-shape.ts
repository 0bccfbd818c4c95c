// The parts of a pod the webhook reads or edits, type-checked before any of them is used: the API
// server sends typed objects, but whatever arrives must get an answer with a reason, never a crash.
import { quote } from '../src/quote.js';

type Check = (value: unknown, where: string, problems: string[]) => void;

/** At most this many problems are listed; a body can hold millions of wrong fields. */
const MAX_PROBLEMS = 10;

/** Every type problem of `object` as a Pod, each naming its field; empty when the webhook can read it. */
export function podShapeProblems(object: unknown): string[] {
  // The common case, answered without building the name of every field on the way.
  return isReadablePod(object) ? [] : shapeProblems(object);
}

/** The problems podShapeProblems reports, always worked out in full (isReadablePod's reference). */
export function shapeProblems(object: unknown): string[] {
  const problems: string[] = [];
  if (!isRecord(object)) return [`request.object must be a Pod object, got ${describe(object)}`];
  optional(object.metadata, 'request.object.metadata', metadata, problems);
  if (object.spec === undefined || object.spec === null) problems.push('request.object.spec is missing');
  else optional(object.spec, 'request.object.spec', spec, problems);
  if (problems.length <= MAX_PROBLEMS) return problems;
  // The checks stop early once over the limit, so the rest is not counted.
  return [...problems.slice(0, MAX_PROBLEMS), '… and more problems, not listed'];
}

const metadata: Check = (value, where, problems) => {
  if (!isRecord(value)) return void problems.push(`${where} must be an object, got ${describe(value)}`);
  for (const key of ['name', 'generateName', 'namespace']) optional(value[key], `${where}.${key}`, string, problems);
  optional(value.annotations, `${where}.annotations`, stringMap, problems);
  optional(value.labels, `${where}.labels`, stringMap, problems);
};

const spec: Check = (value, where, problems) => {
  if (!isRecord(value)) return void problems.push(`${where} must be an object, got ${describe(value)}`);
  if (value.containers === undefined || value.containers === null) problems.push(`${where}.containers is missing`);
  else list(container)(value.containers, `${where}.containers`, problems);
  optional(value.initContainers, `${where}.initContainers`, list(container), problems);
  optional(value.ephemeralContainers, `${where}.ephemeralContainers`, list(container), problems);
  optional(value.volumes, `${where}.volumes`, list(named), problems);
  optional(value.serviceAccountName, `${where}.serviceAccountName`, string, problems);
  optional(value.os, `${where}.os`, os, problems);
  optional(value.securityContext, `${where}.securityContext`, securityContext, problems);
};

const container: Check = (value, where, problems) => {
  named(value, where, problems);
  if (!isRecord(value)) return;
  optional(value.volumeMounts, `${where}.volumeMounts`, list(volumeMount), problems);
};

const volumeMount: Check = (value, where, problems) => {
  named(value, where, problems);
  if (isRecord(value)) string(value.mountPath, `${where}.mountPath`, problems);
};

const named: Check = (value, where, problems) => {
  if (!isRecord(value)) return void problems.push(`${where} must be an object, got ${describe(value)}`);
  string(value.name, `${where}.name`, problems);
};

const os: Check = (value, where, problems) => {
  if (!isRecord(value)) return void problems.push(`${where} must be an object, got ${describe(value)}`);
  optional(value.name, `${where}.name`, string, problems);
};

const securityContext: Check = (value, where, problems) => {
  if (!isRecord(value)) return void problems.push(`${where} must be an object, got ${describe(value)}`);
  if (value.runAsUser !== undefined && value.runAsUser !== null && typeof value.runAsUser !== 'number') {
    problems.push(`${where}.runAsUser must be a number, got ${describe(value.runAsUser)}`);
  }
};

const string: Check = (value, where, problems) => {
  if (typeof value !== 'string') problems.push(`${where} must be a string, got ${describe(value)}`);
};

const stringMap: Check = (value, where, problems) => {
  if (!isRecord(value)) return void problems.push(`${where} must be a map of strings, got ${describe(value)}`);
  for (const key of Object.keys(value)) {
    if (typeof value[key] !== 'string') {
      problems.push(`${where}[${quote(key, 64)}] must be a string, got ${describe(value[key])}`);
      if (problems.length > MAX_PROBLEMS) return;
    }
  }
};

function list(item: Check): Check {
  return (value, where, problems) => {
    if (!Array.isArray(value)) return void problems.push(`${where} must be a list, got ${describe(value)}`);
    for (let i = 0; i < value.length && problems.length <= MAX_PROBLEMS; i++) item(value[i], `${where}[${i}]`, problems);
  };
}

function optional(value: unknown, where: string, check: Check, problems: string[]): void {
  if (isSet(value)) check(value, where, problems);
}

/** Whether shapeProblems finds nothing: the same checks, as a yes or no. */
export function isReadablePod(object: unknown): boolean {
  if (!isRecord(object)) return false;
  const { metadata: m, spec: s } = object;
  if (isSet(m)) {
    if (!isRecord(m) || !isOptionalString(m.name) || !isOptionalString(m.generateName) || !isOptionalString(m.namespace)) return false;
    if (!isOptionalStringMap(m.annotations) || !isOptionalStringMap(m.labels)) return false;
  }
  if (!isRecord(s) || !isListOf(s.containers, isContainer)) return false;
  if (isSet(s.initContainers) && !isListOf(s.initContainers, isContainer)) return false;
  if (isSet(s.ephemeralContainers) && !isListOf(s.ephemeralContainers, isContainer)) return false;
  if (isSet(s.volumes) && !isListOf(s.volumes, isNamed)) return false;
  if (!isOptionalString(s.serviceAccountName)) return false;
  if (isSet(s.os) && !(isRecord(s.os) && isOptionalString(s.os.name))) return false;
  const context = s.securityContext;
  return !isSet(context) || (isRecord(context) && (!isSet(context.runAsUser) || typeof context.runAsUser === 'number'));
}

function isNamed(value: unknown): value is Record<string, unknown> & { name: string } {
  return isRecord(value) && typeof value.name === 'string';
}

function isContainer(value: unknown): boolean {
  return isNamed(value) && (!isSet(value.volumeMounts) || isListOf(value.volumeMounts, isMount));
}

function isMount(value: unknown): boolean {
  return isNamed(value) && typeof value.mountPath === 'string';
}

function isListOf(value: unknown, item: (value: unknown) => boolean): boolean {
  if (!Array.isArray(value)) return false;
  for (const v of value) if (!item(v)) return false;
  return true;
}

function isOptionalString(value: unknown): boolean {
  return !isSet(value) || typeof value === 'string';
}

function isOptionalStringMap(value: unknown): boolean {
  if (!isSet(value)) return true;
  if (!isRecord(value)) return false;
  for (const key in value) if (Object.hasOwn(value, key) && typeof value[key] !== 'string') return false;
  return true;
}

// Absent and null are the same to the API server's decoder.
function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// The type only, never the value: the value may be anything a client sent.
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
