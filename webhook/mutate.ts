// One admission: decide, resolve, inject, diff. Returns the AdmissionResponse and the outcome for logs and metrics.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { AdmissionRequest, AdmissionResponse } from './admission.js';
import { namespaceOptIn, podOptIn, preCheck } from './decide.js';
import { diff } from './diff.js';
import { injectPod } from './inject.js';
import type { Lookups } from './lookups.js';
import { resolveConfig } from './resolve.js';
import type { WebhookSettings } from './settings.js';

export type Outcome = 'injected' | 'skipped' | 'denied' | 'error';

export interface MutationResult {
  response: AdmissionResponse;
  outcome: Outcome;
  reason: string;
}

export type Mutator = (request: AdmissionRequest) => Promise<MutationResult>;

/** The admission logic with its settings and cluster reads bound. */
export function createMutator(settings: WebhookSettings, lookups: Lookups): Mutator {
  return (request) => mutate(request, settings, lookups);
}

export async function mutate(request: AdmissionRequest, settings: WebhookSettings, lookups: Lookups): Promise<MutationResult> {
  const skip = preCheck(request, settings.namespace);
  if (skip !== undefined) return allow(request, 'skipped', skip);

  const pod = request.object as V1Pod | undefined;
  if (pod === null || typeof pod !== 'object' || pod.spec === undefined || !Array.isArray(pod.spec.containers)) {
    return deny(request, 'error', 'request.object is not a Pod with spec.containers', 400);
  }
  const namespace = request.namespace ?? pod.metadata?.namespace ?? 'default';
  const podName = pod.metadata?.name ?? `${pod.metadata?.generateName ?? ''}*`;

  try {
    const own = podOptIn(pod);
    if (own?.inject === 'invalid') return deny(request, 'denied', message(namespace, podName, [own.problem]), 400);
    if (own?.inject === false) return allow(request, 'skipped', own.reason);

    // The namespace is needed for its label (when the pod says nothing) and its default annotations.
    const namespaceObject: V1Namespace | undefined = await lookups.namespace(namespace);
    const decision = own ?? namespaceOptIn(namespaceObject);
    if (decision.inject !== true) return allow(request, 'skipped', decision.inject === false ? decision.reason : 'invalid');

    const { config, problems, warnings } = await resolveConfig({ pod, namespace, namespaceObject, lookups, settings });
    if (config === undefined) return deny(request, 'denied', message(namespace, podName, problems), 400, warnings);

    const patch = diff(pod, injectPod(pod, config));
    if (patch.length === 0) return allow(request, 'skipped', 'already injected', warnings);
    return {
      outcome: 'injected',
      reason: decision.reason,
      response: {
        uid: request.uid,
        allowed: true,
        patchType: 'JSONPatch',
        patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
        ...(warnings.length > 0 ? { warnings } : {}),
      },
    };
  } catch (error) {
    // A cluster read failed: say so rather than admit a pod that cannot start.
    const text = `akv-injector could not resolve the configuration of pod ${namespace}/${podName}: ${(error as Error).message}; retry the request`;
    return deny(request, 'error', text, 500);
  }
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
    reason: text.split('\n')[0] ?? text,
    response: {
      uid: request.uid,
      allowed: false,
      status: { code, message: text, reason: code === 400 ? 'BadRequest' : 'InternalError' },
      ...(warnings.length > 0 ? { warnings } : {}),
    },
  };
}
