// Offline injection for review and GitOps: the webhook's own mutate() applied to the pod templates of
// a multi-document YAML stream. Documents it does not inject pass through byte for byte.
import type { V1Namespace, V1Pod, V1ServiceAccount } from '@kubernetes/client-node';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { isMap, isSeq, parseAllDocuments, type Document } from 'yaml';
import type { AdmissionRequest } from './admission.js';
import { INIT_CONTAINER, REFRESH_CONTAINER, SECRETS_VOLUME } from './names.js';
import type { Lookups, SecretProviderClass } from './lookups.js';
import { mutate } from './mutate.js';
import type { WebhookSettings } from './settings.js';

export interface RenderOptions {
  settings: WebhookSettings;
  /** Namespace of documents that name none. */
  namespace: string;
  /** Labels and annotations the namespaces are assumed to carry (namespace defaults). */
  namespaceLabels?: Record<string, string>;
  namespaceAnnotations?: Record<string, string>;
  /** Annotations the ServiceAccounts are assumed to carry, e.g. azure.workload.identity/client-id. */
  serviceAccountAnnotations?: Record<string, string>;
}

export interface RenderResult {
  output: string;
  /** One entry per document that was denied: its kind/name and the webhook's message. */
  problems: string[];
  warnings: string[];
  injected: string[];
  /** One line per workload: what was injected into it, or why nothing was. */
  summary: string[];
}

/** Where each workload kind keeps its pod template. */
const TEMPLATE_PATHS = new Map<unknown, string[]>([
  ['Pod', []],
  ['Deployment', ['spec', 'template']],
  ['StatefulSet', ['spec', 'template']],
  ['DaemonSet', ['spec', 'template']],
  ['ReplicaSet', ['spec', 'template']],
  ['Job', ['spec', 'template']],
  ['CronJob', ['spec', 'jobTemplate', 'spec', 'template']],
]);

interface Manifest {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  [key: string]: unknown;
}

/** One document of the stream: its text as written, the YAML document, and its value when it is a map. */
interface Chunk {
  text: string;
  document: Document.Parsed;
  value: Manifest | undefined;
}

/** Render every document of `text` as the webhook would admit it. */
export async function renderManifests(text: string, options: RenderOptions): Promise<RenderResult> {
  const chunks = splitDocuments(text);
  const lookups = offlineLookups(
    chunks.map((chunk) => chunk.value).filter((v): v is Manifest => v !== undefined),
    options,
  );
  const result: RenderResult = { output: chunks.length === 0 ? text : '', problems: [], warnings: [], injected: [], summary: [] };
  let n = 0;
  for (const chunk of chunks) {
    const rendered =
      chunk.value === undefined ? undefined : await renderOne(chunk.value, chunk.text, chunk.document, options, lookups, `render-${n++}`, result);
    result.output += rendered ?? chunk.text;
  }
  return result;
}

async function renderOne(
  doc: Manifest,
  text: string,
  document: Document.Parsed,
  options: RenderOptions,
  lookups: Lookups,
  uid: string,
  result: RenderResult,
): Promise<string | undefined> {
  // A Map: `kind: constructor` is a document's word, not a key of Object.prototype.
  const path = TEMPLATE_PATHS.get(doc.kind);
  if (path === undefined) return undefined;
  const kind = doc.kind as string;
  const template = getIn(doc, path) as V1Pod | undefined;
  if (template === undefined || typeof template !== 'object') return undefined;
  const pod: V1Pod = { apiVersion: 'v1', kind: 'Pod', metadata: template.metadata ?? {}, spec: template.spec ?? { containers: [] } };
  const namespace = typeof doc.metadata?.namespace === 'string' && doc.metadata.namespace !== '' ? doc.metadata.namespace : options.namespace;
  const label = `${kind} ${namespace}/${typeof doc.metadata?.name === 'string' ? doc.metadata.name : '(unnamed)'}`;
  const request: AdmissionRequest = {
    uid,
    kind: { group: '', version: 'v1', kind: 'Pod' },
    resource: { group: '', version: 'v1', resource: 'pods' },
    namespace,
    operation: 'CREATE',
    object: pod,
  };
  const mutation = await mutate(request, options.settings, lookups);
  result.warnings.push(...(mutation.response.warnings ?? []).map((w) => `${label}: ${w}`));
  if (!mutation.response.allowed) {
    result.problems.push(`${label}: ${mutation.response.status?.message ?? mutation.reason}`);
    return undefined;
  }
  if (mutation.response.patch === undefined) {
    result.summary.push(`${label}: not injected (${mutation.reason})`);
    return undefined;
  }
  const operations = JSON.parse(Buffer.from(mutation.response.patch, 'base64').toString('utf8')) as Operation[];
  const injected = fastJsonPatch.applyPatch(structuredClone(pod), operations, true, false).newDocument;
  result.injected.push(label);
  result.summary.push(`${label}: ${describeInjection(injected)}`);
  // The patch applied to the parsed document node by node: comments, scalar styles and key order stay as written.
  patchDocument(document, path, operations);
  // Every rendered document starts with its marker: the stream's first may have had none.
  document.directives.docStart = true;
  return document.toString(layoutOf(text));
}

// Cluster reads answered from the flags and from the documents themselves (a SecretProviderClass in the stream).
function offlineLookups(docs: Manifest[], options: RenderOptions): Lookups {
  return {
    async namespace(name): Promise<V1Namespace> {
      const own = docs.find((d) => d.kind === 'Namespace' && d.metadata?.name === name) as V1Namespace | undefined;
      return {
        metadata: {
          name,
          labels: { ...(options.namespaceLabels ?? {}), ...(own?.metadata?.labels ?? {}) },
          annotations: { ...(options.namespaceAnnotations ?? {}), ...(own?.metadata?.annotations ?? {}) },
        },
      };
    },
    async serviceAccount(namespace, name): Promise<V1ServiceAccount> {
      const own = docs.find((d) => d.kind === 'ServiceAccount' && d.metadata?.name === name && (d.metadata?.namespace ?? options.namespace) === namespace) as
        V1ServiceAccount | undefined;
      return { metadata: { namespace, name, annotations: { ...(options.serviceAccountAnnotations ?? {}), ...(own?.metadata?.annotations ?? {}) } } };
    },
    async secretProviderClass(namespace, name): Promise<SecretProviderClass | undefined> {
      return docs.find((d) => d.kind === 'SecretProviderClass' && d.metadata?.name === name && (d.metadata?.namespace ?? options.namespace) === namespace) as
        SecretProviderClass | undefined;
    },
  };
}

/**
 * The stream's documents, each with its text: from where the one before ends to where it ends, so the texts put
 * together are the stream byte for byte, and what lies between two documents (comments before a `---`) goes with
 * the document the parser gives it to.
 */
function splitDocuments(text: string): Chunk[] {
  const documents = parseAllDocuments(text);
  if (!Array.isArray(documents)) return [];
  const failed = documents.find((document) => document.errors.length > 0);
  if (failed !== undefined) throw new Error(`not valid YAML: ${failed.errors[0]?.message ?? ''}`);
  const ends = documents.map((document, index) => (index === documents.length - 1 ? text.length : endOf(document, text)));
  return documents.map((document, index) => ({ text: text.slice(ends[index - 1] ?? 0, ends[index]), document, value: manifestOf(document) }));
}

/** Where a document ends (range[2], after its own comments), at a line's end: an empty one's range stops before its newline. */
function endOf(document: Document.Parsed, text: string): number {
  const blankRest = /[ \t]*\r?\n/y;
  blankRest.lastIndex = document.range[2];
  return blankRest.test(text) ? blankRest.lastIndex : document.range[2];
}

function manifestOf(document: Document): Manifest | undefined {
  const value = document.toJS() as unknown;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value as Manifest;
}

function getIn(value: unknown, path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = Object.hasOwn(current, key) ? (current as Record<string, unknown>)[key] : undefined;
  }
  return current;
}

/** Apply JSON Patch operations (add, replace, remove; paths within the pod) to the pod template at `base` of `document`. */
function patchDocument(document: Document.Parsed, base: string[], operations: Operation[]): void {
  for (const operation of operations) {
    const segments = operation.path
      .split('/')
      .slice(1)
      .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
    const path = keysOf(document, [...base, ...segments]);
    if (operation.op === 'remove') document.deleteIn(path);
    else if (operation.op === 'add' || operation.op === 'replace') document.setIn(path, document.createNode(operation.value));
    else throw new Error(`render: unexpected patch operation ${operation.op}`);
  }
}

/** The path with each index into a sequence as a number, as the yaml package's collections want it. */
function keysOf(document: Document.Parsed, segments: string[]): Array<string | number> {
  const keys: Array<string | number> = [];
  let node: unknown = document.contents;
  for (const segment of segments) {
    const key = isSeq(node) ? (segment === '-' ? node.items.length : Number(segment)) : segment;
    keys.push(key);
    node = isSeq(node) || isMap(node) ? node.get(key, true) : undefined;
  }
  return keys;
}

/** What the webhook put into a pod, in one line: the init containers, the vault, the objects and where they are mounted. */
function describeInjection(pod: V1Pod): string {
  const spec = pod.spec;
  const added = (spec?.initContainers ?? []).filter((c) => c.name === INIT_CONTAINER || c.name === REFRESH_CONTAINER);
  const init = added.find((c) => c.name === INIT_CONTAINER);
  const env = new Map((init?.env ?? []).map((e) => [e.name, e.value]));
  let objects = 0;
  try {
    objects = (JSON.parse(env.get('AKV_INJECTOR_OBJECTS') ?? '[]') as unknown[]).length;
  } catch {
    // Counted as none: the init container's own check reports a bad list.
  }
  const mounts = [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]
    .filter((c) => !added.includes(c))
    .flatMap((c) => (c.volumeMounts ?? []).filter((m) => m.name === SECRETS_VOLUME).map((m) => `${c.name}:${m.mountPath}`));
  return `injected ${added.map((c) => c.name).join(' + ')} (${env.get('AKV_INJECTOR_VAULT_URL') ?? '?'}, ${objects} ${objects === 1 ? 'object' : 'objects'}) mounted at ${mounts.join(', ') || 'no container'}`;
}

/**
 * The layout the yaml package cannot read back from a document, guessed from its text so the rendered one is
 * written the same way: sequences indented under their key or not, and flow collections padded (`[ a ]`) or not.
 */
function layoutOf(text: string): { indentSeq: boolean; flowCollectionPadding: boolean } {
  const count = (pattern: RegExp): number => text.match(pattern)?.length ?? 0;
  const flush = count(/^( *)[^\s#-][^\n]*:[ \t]*\r?\n\1- /gm);
  const indented = count(/^( *)[^\s#-][^\n]*:[ \t]*\r?\n\1 +- /gm);
  const padded = count(/(?:: |- )[[{] /g);
  const tight = count(/(?:: |- )[[{][^\s\]}]/g);
  return { indentSeq: flush <= indented, flowCollectionPadding: padded > tight };
}
