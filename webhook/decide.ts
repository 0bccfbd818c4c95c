// Whether a pod is injected: small adjudicators, each returning the reason it gives.
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import { parseGoBool } from '../src/objects.js';
import { quote } from '../src/quote.js';
import type { AdmissionRequest } from './admission.js';
import { ANNOTATIONS, NAMESPACE_LABEL, NAMESPACE_LABEL_VALUE, NEVER_INJECTED_NAMESPACES, STATUS_INJECTED } from './names.js';

export type Decision = { inject: true; reason: string } | { inject: false; reason: string } | { inject: 'invalid'; problem: string };

/** Skip reasons that need no cluster read: not a pod CREATE, a protected namespace, already injected. */
export function preCheck(request: AdmissionRequest, ownNamespace: string): string | undefined {
  if (request.operation !== 'CREATE') return `operation ${request.operation} (only CREATE is injected)`;
  const { group, resource } = request.resource;
  if (group !== '' || resource !== 'pods' || (request.subResource ?? '') !== '') {
    return `resource ${[group || 'core', resource, request.subResource].filter(Boolean).join('/')} is not a pod`;
  }
  const namespace = request.namespace ?? '';
  if (NEVER_INJECTED_NAMESPACES.includes(namespace)) return `namespace ${namespace} is never injected`;
  if (namespace === ownNamespace) return `namespace ${namespace} is the webhook's own`;
  return undefined;
}

/** The pod's own word: its inject annotation, or that it is already injected. */
export function podOptIn(pod: V1Pod): Decision | undefined {
  const annotations = pod.metadata?.annotations ?? {};
  if (annotations[ANNOTATIONS.status] === STATUS_INJECTED) return { inject: false, reason: 'already injected' };
  const value = annotations[ANNOTATIONS.inject];
  if (value === undefined) return undefined;
  const parsed = parseGoBool(value.trim());
  if (parsed === undefined) {
    return { inject: 'invalid', problem: `annotation ${ANNOTATIONS.inject}: ${quote(value)} must be "true" or "false"` };
  }
  return parsed ? { inject: true, reason: 'pod annotation' } : { inject: false, reason: 'pod opted out' };
}

/** The namespace's word, for pods that say nothing themselves. */
export function namespaceOptIn(namespace: V1Namespace | undefined): Decision {
  if (namespace?.metadata?.labels?.[NAMESPACE_LABEL] === NAMESPACE_LABEL_VALUE) return { inject: true, reason: 'namespace label' };
  return { inject: false, reason: 'not opted in' };
}
