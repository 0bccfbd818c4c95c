// Replicas of one pod template share one admission: the patch worked out for the first pod is the answer for the rest.
//
// The pods a controller makes from one template differ, when they reach the webhook, in their metadata (name, uid,
// labels such as pod-template-hash, owner references) and in one place of their spec: the API server's ServiceAccount
// admission plugin names each pod's token volume `kube-api-access-` and five random characters, and mounts it into
// every container. The mutation reads, of the metadata, only the annotations (and the name in denials, never kept
// here); and it reads volume and mount names only to compare them with akv-injector's own, which such a name never
// is, or to copy them into the patch. So two pods of one namespace whose annotations are equal, and whose specs are
// equal but for the token volume's name where volumes and mounts are named, get the same patch from the same cluster
// objects and API server version, unless it copies the name: such a patch (an init container placed first shifts the
// pod's own, whose mounts name it) is never kept. Equal means equal as JSON, key order aside, walked in place:
// comparing costs no allocation, a few µs for an ordinary pod, where resolving, injecting and diffing cost ~50.
//
// A template's first request body is kept too (imprint.ts): a replica's body, equal to it byte for byte but where
// replicas differ, is recognized and answered before it is parsed, which costs more than all the rest of a shared
// admission.
import type { V1Namespace, V1Pod, V1PodSpec, V1Volume } from '@kubernetes/client-node';
import { podLogName, reviewAround, summarize, type AdmissionRequest, type AdmissionResponse, type AdmissionSummary, type ReviewText } from './admission.js';
import { hintOf, imprint, matchImprint, TOKEN_VOLUME_NAME, type Imprint, type Replica } from './imprint.js';
import type { Lookups } from './lookups.js';

/** What an injection of one template read, and what it came to. */
interface Entry {
  /** The first pod's annotations and spec, as parsed from its request (never modified: the mutation copies on write). */
  readonly annotations: unknown;
  readonly spec: V1PodSpec;
  readonly tokenVolume: string | undefined;
  /** Values in annotations and spec, for the cache's bound. */
  readonly values: number;
  readonly namespaceObject: V1Namespace | undefined;
  readonly version: unknown;
  readonly reads: readonly Read[];
  /** The patch, base64, as the AdmissionResponse carries it. */
  readonly patch: string;
  readonly warnings: readonly string[];
  /**
   * The first pod's request body and what its replicas recognized by their bytes are told; none when it cannot be
   * imprinted, or once its hint has more templates than PER_BUCKET (the template itself stays).
   */
  recognition: Recognition | undefined;
}

interface Recognition {
  readonly imprint: Imprint;
  /** The namespace the first pod's admission read. */
  readonly namespace: string;
  /** Why the first pod was injected (its annotation, or its namespace's label). */
  readonly reason: string;
  readonly summary: AdmissionSummary;
  /** request.name, the pod's name and its generateName in the first pod's request, for the log's pod name. */
  readonly names: readonly [unknown, unknown, unknown];
  readonly review: ReviewText;
}

/** One cluster read of a resolution and its answer: an informer cache hands out the same object until it changes. */
interface Read {
  readonly kind: 'serviceAccount' | 'secretProviderClass';
  readonly namespace: string;
  readonly name: string;
  readonly answer: unknown;
}

/** The first pod's admission, as it came and as it was answered: for its replicas recognized by their bytes. */
export interface Admitted {
  body: Buffer;
  request: AdmissionRequest;
  reason: string;
  response: AdmissionResponse;
}

/** A replica recognized by its body's bytes, and its answer: its template's, for its own uid. */
export interface RecognizedReplica {
  reason: string;
  /** The log line's names: the replica's own uid and pod name. */
  summary: AdmissionSummary;
  patch: string;
  warnings: string[];
  /** The AdmissionReview answering it, serialized. */
  review: string;
}

/** What a pod's admission reads besides the pod: the namespace (already read to decide), the cluster, the API server's version. */
export interface Inputs {
  namespaceObject: V1Namespace | undefined;
  lookups: Lookups;
  version: unknown;
}

/** One pod's admission through the cache. */
export interface Sharing {
  /** The answer kept for the pod's template, when every cluster object its resolution read is still the one it read. */
  reuse(): Promise<{ patch: string; warnings: string[] } | undefined>;
  /** The lookups to resolve with, each read noted for keep(). */
  readonly lookups: Lookups;
  /**
   * Keep the patch (its JSON, and as base64) for the template's next pods, unless it (or a warning) names this pod's
   * token volume; with the admission as it came, for replicas recognized by their bytes too.
   */
  keep(patchJson: string, patch: string, warnings: string[], admitted?: Admitted): void;
}

export interface ReplicaCache {
  /** The admission of `pod` through the cache. */
  share(namespace: string, pod: V1Pod, inputs: Inputs): Sharing;
  /**
   * The answer for a body that is a kept template's but where replicas differ (imprint.ts), when every cluster object
   * its resolution read is still the one it read; undefined otherwise. Rejects as `lookups` do.
   */
  recognize(body: Buffer, lookups: Lookups, version: unknown): Promise<RecognizedReplica | undefined>;
  /** Templates kept, and the values of their annotations and specs. */
  size(): { templates: number; values: number };
}

export interface ReplicaCacheOptions {
  /** Templates kept at most; the least recently used goes first. */
  maxTemplates: number;
  /** Values (containers and scalars of annotations and spec) kept at most, all templates together. */
  maxValues: number;
  /** A template of more values is not kept. */
  maxValuesPerTemplate: number;
  /** Bytes of kept request bodies at most, all templates together (one is at most imprint.ts's MAX_IMPRINT_BYTES). */
  maxBodyBytes: number;
}

/**
 * Templates and their size: ordinary pods hold 200–400 values (annotations and spec), ~30 bytes of heap each, and
 * their request bodies 3–10 KiB.
 */
export const DEFAULT_REPLICA_CACHE: ReplicaCacheOptions = { maxTemplates: 256, maxValues: 100_000, maxValuesPerTemplate: 5_000, maxBodyBytes: 4 * 1024 * 1024 };

/** Templates are found among the few of their bucket: pods of one namespace, ServiceAccount and first container image. */
const PER_BUCKET = 8;

/** Nesting of a kept template at most: a pod's spec nests about 10 levels. */
const MAX_DEPTH = 64;

export function createReplicaCache(options: ReplicaCacheOptions = DEFAULT_REPLICA_CACHE): ReplicaCache {
  // Templates by bucket, most recently used first; `recency` holds them all, least recently used first, with their bucket.
  const buckets = new Map<string, Entry[]>();
  const recency = new Map<Entry, string>();
  // Templates with a kept body, by their body's hint (imprint.ts), most recently used first.
  const imprints = new Map<string, Entry[]>();
  let values = 0;
  let bodyBytes = 0;

  const matching = (bucket: string, annotations: unknown, spec: unknown, tokenVolume: string | undefined): Entry | undefined =>
    buckets.get(bucket)?.find((e) => sameJson(e.annotations, annotations) && sameSpec(e.spec, spec, e.tokenVolume, tokenVolume));

  const remove = (entry: Entry, bucket: string): void => {
    const entries = buckets.get(bucket) ?? [];
    entries.splice(entries.indexOf(entry), 1);
    if (entries.length === 0) buckets.delete(bucket);
    recency.delete(entry);
    values -= entry.values;
    forget(entry);
  };

  /** Drop `entry`'s kept body: its replicas go on being shared once parsed. */
  const forget = (entry: Entry): void => {
    if (entry.recognition === undefined) return;
    const { hint, body } = entry.recognition.imprint;
    const byHint = imprints.get(hint) ?? [];
    byHint.splice(byHint.indexOf(entry), 1);
    if (byHint.length === 0) imprints.delete(hint);
    bodyBytes -= body.length;
    entry.recognition = undefined;
  };

  /** `entry` used: first of its bucket, of its hint, and the most recent of all. */
  const touch = (entry: Entry, bucket: string): void => {
    toFront(buckets.get(bucket) as Entry[], entry);
    if (entry.recognition !== undefined) toFront(imprints.get(entry.recognition.imprint.hint) as Entry[], entry);
    recency.delete(entry);
    recency.set(entry, bucket);
  };

  const find = (bucket: string, annotations: unknown, spec: unknown, tokenVolume: string | undefined): Entry | undefined => {
    const entry = matching(bucket, annotations, spec, tokenVolume);
    if (entry !== undefined) touch(entry, bucket);
    return entry;
  };

  const store = (bucket: string, entry: Entry): void => {
    // The same template admitted twice at once is kept once.
    const twin = matching(bucket, entry.annotations, entry.spec, entry.tokenVolume);
    if (twin !== undefined) remove(twin, bucket);
    const entries = buckets.get(bucket) ?? [];
    buckets.set(bucket, entries);
    entries.unshift(entry);
    recency.set(entry, bucket);
    values += entry.values;
    if (entries.length > PER_BUCKET) remove(entries[entries.length - 1] as Entry, bucket);
    if (entry.recognition !== undefined) {
      const { hint, body } = entry.recognition.imprint;
      const byHint = imprints.get(hint) ?? [];
      imprints.set(hint, byHint);
      byHint.unshift(entry);
      bodyBytes += body.length;
      const oldest = byHint[PER_BUCKET];
      if (oldest !== undefined) forget(oldest);
    }
    for (const [old, oldBucket] of recency) {
      if (recency.size <= options.maxTemplates && values <= options.maxValues && bodyBytes <= options.maxBodyBytes) break;
      remove(old, oldBucket);
    }
  };

  /** Whether what `entry`'s resolution read is what the cluster holds now: the same objects, by identity. */
  const current = async (entry: Entry, namespaceObject: V1Namespace | undefined, version: unknown, lookups: Lookups): Promise<boolean> => {
    if (entry.namespaceObject !== namespaceObject || entry.version !== version) return false;
    for (const read of entry.reads) {
      const answer =
        read.kind === 'serviceAccount' ? await lookups.serviceAccount(read.namespace, read.name) : await lookups.secretProviderClass(read.namespace, read.name);
      if (answer !== read.answer) return false;
    }
    return true;
  };

  /** The kept template `body` is a replica of, and the replica's own values: among those of its hint, else of none. */
  const recognized = (body: Buffer): { entry: Entry; replica: Replica } | undefined => {
    const hint = hintOf(body);
    return among(imprints.get(hint), body) ?? (hint === '' ? undefined : among(imprints.get(''), body));
  };
  const among = (candidates: Entry[] | undefined, body: Buffer): { entry: Entry; replica: Replica } | undefined => {
    for (const entry of candidates ?? []) {
      const replica = matchImprint((entry.recognition as Recognition).imprint, body);
      if (replica !== undefined) return { entry, replica };
    }
    return undefined;
  };

  return {
    share(namespace, pod, { namespaceObject, lookups, version }) {
      const spec = pod.spec as V1PodSpec;
      const annotations = pod.metadata?.annotations;
      const tokenVolume = tokenVolumeName(spec.volumes);
      const bucket = `${namespace}\n${spec.serviceAccountName ?? ''}\n${spec.containers[0]?.image ?? ''}`;
      const reads: Read[] = [];
      const note = <T>(kind: Read['kind'], namespace: string, name: string, answer: T): T => {
        reads.push({ kind, namespace, name, answer });
        return answer;
      };
      return {
        async reuse() {
          const entry = find(bucket, annotations, spec, tokenVolume);
          if (entry === undefined || !(await current(entry, namespaceObject, version, lookups))) return undefined;
          return { patch: entry.patch, warnings: [...entry.warnings] };
        },
        lookups: {
          namespace: (name) => lookups.namespace(name),
          serviceAccount: async (namespace, name) => note('serviceAccount', namespace, name, await lookups.serviceAccount(namespace, name)),
          secretProviderClass: async (namespace, name) => note('secretProviderClass', namespace, name, await lookups.secretProviderClass(namespace, name)),
        },
        keep(patchJson, patch, warnings, admitted) {
          if (tokenVolume !== undefined && (patchJson.includes(tokenVolume) || warnings.some((w) => w.includes(tokenVolume)))) return;
          const size = countValues(annotations, options.maxValuesPerTemplate) + countValues(spec, options.maxValuesPerTemplate);
          if (size > options.maxValuesPerTemplate) return;
          const recognition = admitted && recognitionOf(admitted, namespace, pod, tokenVolume);
          store(bucket, { annotations, spec, tokenVolume, values: size, namespaceObject, version, reads, patch, warnings: [...warnings], recognition });
        },
      };
    },

    async recognize(body, lookups, version) {
      const found = recognized(body);
      if (found === undefined) return undefined;
      const { entry, replica } = found;
      const { uid, names } = replica;
      const recognition = entry.recognition as Recognition;
      if (!(await current(entry, await lookups.namespace(recognition.namespace), version, lookups))) return undefined;
      const bucket = recency.get(entry);
      // Gone meanwhile (another admission's store evicted it): its answer still held when it was read.
      if (bucket !== undefined) touch(entry, bucket);
      const [requestName, name, generateName] = recognition.names;
      const pod = podLogName(names[0] ?? requestName, names[1] ?? name, names[2] ?? generateName);
      return {
        reason: recognition.reason,
        summary: { ...recognition.summary, uid, pod },
        patch: entry.patch,
        warnings: [...entry.warnings],
        review: recognition.review.before + uid + recognition.review.after,
      };
    },

    size: () => ({ templates: recency.size, values }),
  };
}

/** What a template's replicas recognized by their bytes are told; undefined when its body cannot be imprinted. */
function recognitionOf(admitted: Admitted, namespace: string, pod: V1Pod, tokenVolume: string | undefined): Recognition | undefined {
  const { body, request, reason, response } = admitted;
  const kept = imprint(body, request.uid, tokenVolume);
  if (kept === undefined) return undefined;
  const names = [request.name, pod.metadata?.name, pod.metadata?.generateName] as const;
  return { imprint: kept, namespace, reason, summary: summarize(request), names, review: reviewAround(response) };
}

function toFront(list: Entry[], entry: Entry): void {
  list.splice(list.indexOf(entry), 1);
  list.unshift(entry);
}

/** The name of the pod's one ServiceAccount token volume, if it has exactly one. */
function tokenVolumeName(volumes: V1Volume[] | undefined): string | undefined {
  let found: string | undefined;
  for (const volume of volumes ?? []) {
    if (!TOKEN_VOLUME_NAME.test(volume.name)) continue;
    if (found !== undefined) return undefined;
    found = volume.name;
  }
  return found;
}

// Where a value sits in a pod spec, for the one place two replicas may differ: the token volume's name.
const ELSEWHERE = 0;
const SPEC = 1;
const VOLUMES = 2;
const CONTAINERS = 3;
const CONTAINER = 4;
const MOUNTS = 5;
const NAMED = 6;
const NAME = 7;
type Place = typeof ELSEWHERE | typeof SPEC | typeof VOLUMES | typeof CONTAINERS | typeof CONTAINER | typeof MOUNTS | typeof NAMED | typeof NAME;

function placeOf(parent: Place, key: string): Place {
  if (parent === SPEC)
    return key === 'volumes' ? VOLUMES : key === 'containers' || key === 'initContainers' || key === 'ephemeralContainers' ? CONTAINERS : ELSEWHERE;
  if (parent === CONTAINER) return key === 'volumeMounts' ? MOUNTS : ELSEWHERE;
  if (parent === NAMED) return key === 'name' ? NAME : ELSEWHERE;
  return ELSEWHERE;
}

/** Equal as JSON values, but that where volumes and mounts are named `a` may say `tokenA` where `b` says `tokenB`. */
function sameSpec(a: unknown, b: unknown, tokenA: string | undefined, tokenB: string | undefined): boolean {
  return same(a, b, SPEC, tokenA, tokenB);
}

/** Equal as JSON values. */
function sameJson(a: unknown, b: unknown): boolean {
  return same(a, b, ELSEWHERE, undefined, undefined);
}

/**
 * Equal as JSON values, walked in place (for-in and hasOwn: Object.keys would copy every object's keys). Key order is
 * not compared: the API server writes a pod's fields and map keys in one order, and a patch made from one order adds
 * the same values at the same paths as one made from another.
 */
function same(a: unknown, b: unknown, place: Place, tokenA: string | undefined, tokenB: string | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return place === NAME && tokenA !== undefined && a === tokenA && b === tokenB;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    const item = place === VOLUMES || place === MOUNTS ? NAMED : place === CONTAINERS ? CONTAINER : ELSEWHERE;
    for (let i = 0; i < a.length; i++) if (!same(a[i], b[i], item, tokenA, tokenB)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const key in x) {
    if (!Object.hasOwn(x, key)) continue;
    if (!Object.hasOwn(y, key) || !same(x[key], y[key], placeOf(place, key), tokenA, tokenB)) return false;
    keys++;
  }
  for (const key in y) if (Object.hasOwn(y, key)) keys--;
  return keys === 0;
}

/**
 * Values (containers and scalars) in a JSON tree, counting stopped once past `stopAfter`; a tree nested deeper than
 * MAX_DEPTH counts as too large. Without recursion: a body may nest a million levels. Since every kept tree is at most
 * MAX_DEPTH deep, the comparisons above, which descend only where both trees have containers, never go deeper.
 */
function countValues(value: unknown, stopAfter: number): number {
  let count = 0;
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    count++;
    if (count > stopAfter || next.depth > MAX_DEPTH) return Number.POSITIVE_INFINITY;
    if (next.value === null || typeof next.value !== 'object') continue;
    for (const child of Array.isArray(next.value) ? next.value : Object.values(next.value as Record<string, unknown>))
      stack.push({ value: child, depth: next.depth + 1 });
  }
  return count;
}
