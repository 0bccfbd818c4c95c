// One admission: decide, resolve, inject, diff. Returns the AdmissionResponse and the outcome for logs and metrics.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { firstLine } from '../src/quote.js';
import type { AdmissionRequest, AdmissionResponse, AdmissionSummary } from './admission.js';
import { namespaceOptIn, podOptIn, preCheck } from './decide.js';
import { diff } from './diff.js';
import { injectPod } from './inject.js';
import { guardLookups, LookupFailure, type Lookups } from './lookups.js';
import { podShapeProblems } from './pod-shape.js';
import { createReplicaCache, type RecognizedReplica, type ReplicaCache } from './replicas.js';
import { resolveConfig } from './resolve.js';
import type { WebhookSettings } from './settings.js';

export type Outcome = 'injected' | 'skipped' | 'denied' | 'error';

export interface MutationResult {
  response: AdmissionResponse;
  outcome: Outcome;
  reason: string;
  /** Injected with the patch of an earlier pod of the same template (replicas.ts). */
  shared?: true;
}

export interface Mutator {
  /** The admission of `request`; `body`, the bytes it was parsed from, lets its template's replicas be recognized by theirs. */
  (request: AdmissionRequest, body?: Buffer): Promise<MutationResult>;
  /** The admission of a body that is a replica of a kept template, recognized without parsing it; undefined for any other. */
  replica?(body: Buffer): Promise<ReplicaAdmission | undefined>;
}

/** A replica's admission, recognized from its bytes: what the log line names, and the AdmissionReview, serialized. */
export interface ReplicaAdmission {
  result: MutationResult;
  summary: AdmissionSummary;
  review: string;
}

/** The admission logic with its settings and cluster reads bound; replicas of one pod template share their patch (replicas.ts). */
export function createMutator(settings: WebhookSettings, lookups: Lookups, replicas: ReplicaCache = createReplicaCache()): Mutator {
  const mutator: Mutator = (request, body) => mutate(request, settings, lookups, replicas, body);
  mutator.replica = (body) => replicaAdmission(body, settings, lookups, replicas);
  return mutator;
}

/** What replicas.recognize answers, as an admission; undefined too when a cluster read fails (the whole way says why). */
async function replicaAdmission(body: Buffer, settings: WebhookSettings, lookups: Lookups, replicas: ReplicaCache): Promise<ReplicaAdmission | undefined> {
  let replica: RecognizedReplica | undefined;
  try {
    replica = await replicas.recognize(body, guardLookups(lookups), settings.serverVersion?.());
  } catch (error) {
    if (error instanceof LookupFailure) return undefined;
    throw error;
  }
  if (replica === undefined) return undefined;
  const { uid } = replica.summary;
  const result = { ...injected({ uid }, replica.reason, replica.patch, replica.warnings), shared: true as const };
  return { result, summary: replica.summary, review: replica.review };
}

/**
 * Decide, resolve, inject and diff one admission request. Rejects only on a bug of its own; a failed
 * cluster read is an answer (500, retry), and a pod it cannot read is denied naming the field.
 */
export async function mutate(
  request: AdmissionRequest,
  settings: WebhookSettings,
  clusterLookups: Lookups,
  replicas?: ReplicaCache,
  body?: Buffer,
): Promise<MutationResult> {
  const skip = preCheck(request, settings.namespace);
  if (skip !== undefined) return allow(request, 'skipped', skip);

  const shape = podShapeProblems(request.object);
  if (shape.length > 0) return deny(request, 'denied', `akv-injector: request.object is not a Pod it can read:\n${shape.map((p) => `- ${p}`).join('\n')}`, 400);
  const pod = request.object as V1Pod & { spec: NonNullable<V1Pod['spec']> };
  const namespace = request.namespace || pod.metadata?.namespace || 'default';
  const podName = pod.metadata?.name || `${pod.metadata?.generateName ?? ''}*`;
  const lookups = guardLookups(clusterLookups);

  try {
    const own = podOptIn(pod);
    if (own?.inject === 'invalid') return deny(request, 'denied', message(namespace, podName, [own.problem]), 400);
    if (own?.inject === false) return allow(request, 'skipped', own.reason);

    // The namespace is needed for its label (when the pod says nothing) and its default annotations.
    const namespaceObject: V1Namespace | undefined = await lookups.namespace(namespace);
    const decision = own ?? namespaceOptIn(namespaceObject);
    if (decision.inject !== true) return allow(request, 'skipped', decision.inject === false ? decision.reason : 'invalid');

    const sharing = replicas?.share(namespace, pod, { namespaceObject, lookups, version: settings.serverVersion?.() });
    const shared = await sharing?.reuse();
    if (shared !== undefined) return { ...injected(request, decision.reason, shared.patch, shared.warnings), shared: true };

    const { config, problems, warnings } = await resolveConfig({ pod, namespace, namespaceObject, lookups: sharing?.lookups ?? lookups, settings });
    if (config === undefined) return deny(request, 'denied', message(namespace, podName, problems), 400, warnings);

    const patchJson = JSON.stringify(diff(pod, injectPod(pod, config)));
    const patch = Buffer.from(patchJson).toString('base64');
    const result = injected(request, decision.reason, patch, warnings);
    sharing?.keep(patchJson, patch, warnings, body && { body, request, reason: decision.reason, response: result.response });
    return result;
  } catch (error) {
    if (!(error instanceof LookupFailure)) throw error;
    // A cluster read failed: say so rather than admit a pod that cannot start.
    const text = `akv-injector could not resolve the configuration of pod ${namespace}/${podName}: ${error.message}; retry the request`;
    return deny(request, 'error', text, 500);
  }
}

function injected(request: Pick<AdmissionRequest, 'uid'>, reason: string, patch: string, warnings: string[]): MutationResult {
  return {
    outcome: 'injected',
    reason,
    response: { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch, ...(warnings.length > 0 ? { warnings } : {}) },
  };
}

function message(namespace: string, podName: string, problems: string[]): string {
  return `akv-injector: pod ${namespace}/${podName} cannot be injected:\n${problems.map((p) => `- ${p}`).join('\n')}`;
}

function allow(request: AdmissionRequest, outcome: Outcome, reason: string, warnings: string[] = []): MutationResult {
  return { outcome, reason, response: { uid: request.uid, allowed: true, ...(warnings.length > 0 ? { warnings } : {}) } };
}

function deny(request: AdmissionRequest, outcome: Outcome, text: string, code: number, warnings: string[] = []): MutationResult {
  return {
    outcome,
    reason: firstLine(text),
    response: {
      uid: request.uid,
      allowed: false,
      status: { code, message: text, reason: code === 400 ? 'BadRequest' : 'InternalError' },
      ...(warnings.length > 0 ? { warnings } : {}),
    },
  };
}
