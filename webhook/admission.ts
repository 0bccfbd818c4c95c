// AdmissionReview admission.k8s.io/v1 in, AdmissionReview out: decoding and encoding only, no I/O.

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export interface GroupVersionResource {
  group: string;
  version: string;
  resource: string;
}

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: GroupVersionResource;
  subResource?: string;
  requestKind?: GroupVersionKind;
  requestResource?: GroupVersionResource;
  name?: string;
  namespace?: string;
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  userInfo?: { username?: string; uid?: string; groups?: string[] };
  object?: unknown;
  oldObject?: unknown;
  dryRun?: boolean;
  options?: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code?: number; message?: string; reason?: string };
  patch?: string;
  patchType?: 'JSONPatch';
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

export interface AdmissionReview {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  request?: AdmissionRequest;
  response?: AdmissionResponse;
}

export type DecodedReview = { ok: true; request: AdmissionRequest } | { ok: false; message: string };

const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

/** Check the shape of a decoded request body; the message says what is wrong (for a 400). */
export function decodeReview(body: unknown): DecodedReview {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, message: 'the body must be a JSON AdmissionReview object' };
  }
  const review = body as Record<string, unknown>;
  if (review.apiVersion !== 'admission.k8s.io/v1') {
    return {
      ok: false,
      message: `apiVersion must be admission.k8s.io/v1, got ${JSON.stringify(review.apiVersion ?? null)} (set admissionReviewVersions: [v1] in the webhook configuration)`,
    };
  }
  if (review.kind !== 'AdmissionReview') {
    return { ok: false, message: `kind must be AdmissionReview, got ${JSON.stringify(review.kind ?? null)}` };
  }
  const request = review.request;
  if (request === null || typeof request !== 'object' || Array.isArray(request)) {
    return { ok: false, message: 'request is missing' };
  }
  const r = request as Record<string, unknown>;
  if (typeof r.uid !== 'string' || r.uid === '') return { ok: false, message: 'request.uid is missing' };
  if (typeof r.operation !== 'string' || !OPERATIONS.has(r.operation)) {
    return { ok: false, message: `request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got ${JSON.stringify(r.operation ?? null)}` };
  }
  if (!isGvk(r.kind)) return { ok: false, message: 'request.kind must have group, version and kind' };
  if (!isGvr(r.resource)) return { ok: false, message: 'request.resource must have group, version and resource' };
  for (const field of ['name', 'namespace', 'subResource'] as const) {
    const value = r[field];
    if (value !== undefined && value !== null && typeof value !== 'string') return { ok: false, message: `request.${field} must be a string` };
  }
  return { ok: true, request: request as AdmissionRequest };
}

/** The AdmissionReview answering `response`. */
export function encodeReview(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** The AdmissionReview answering `response`, as the body of the answer. */
export function serializeReview(response: AdmissionResponse): string {
  return JSON.stringify(encodeReview(response));
}

/** serializeReview of a response split where its uid goes: `before + uid + after` is its text for a uid that JSON writes as it is. */
export interface ReviewText {
  before: string;
  after: string;
}

/** The text of `response`'s AdmissionReview around its uid, to answer replicas for theirs without serializing it again. */
export function reviewAround(response: AdmissionResponse): ReviewText {
  const text = serializeReview({ ...response, uid: '' });
  const at = text.indexOf('"uid":""') + '"uid":"'.length;
  return { before: text.slice(0, at), after: text.slice(at) };
}

/** A request's identity for the log: names only, never the object's content. */
export interface AdmissionSummary {
  uid: string;
  namespace?: string;
  pod?: string;
  operation: string;
  resource: string;
}

/** The log's names of `request`. */
export function summarize(request: AdmissionRequest): AdmissionSummary {
  const metadata = objectMetadata(request.object);
  return {
    uid: request.uid,
    namespace: request.namespace ?? nonEmpty(metadata.namespace),
    pod: podLogName(request.name, metadata.name, metadata.generateName),
    operation: request.operation,
    resource: resourcePath(request.resource, request.subResource),
  };
}

/** The pod's name in the log: the request's, else the object's name, else its generateName (empty ones skipped). */
export function podLogName(requestName: unknown, name: unknown, generateName: unknown): string | undefined {
  return typeof requestName === 'string' ? requestName : (nonEmpty(name) ?? nonEmpty(generateName));
}

/** The object's metadata fields, as they came (unchecked). */
function objectMetadata(object: unknown): { name?: unknown; generateName?: unknown; namespace?: unknown } {
  if (object === null || typeof object !== 'object') return {};
  const metadata = (object as { metadata?: unknown }).metadata;
  if (metadata === null || typeof metadata !== 'object') return {};
  const m = metadata as Record<string, unknown>;
  return { name: m.name, generateName: m.generateName, namespace: m.namespace };
}

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** group/version/resource/subresource, the empty parts left out (`v1/pods` for the core group). */
function resourcePath(resource: AdmissionRequest['resource'], subResource: string | undefined): string {
  let path = '';
  for (const part of [resource.group, resource.version, resource.resource, subResource]) {
    if (part !== undefined && part !== '') path = path === '' ? part : `${path}/${part}`;
  }
  return path;
}

function isGvk(value: unknown): value is GroupVersionKind {
  const v = value as Partial<GroupVersionKind> | null;
  return v !== null && typeof v === 'object' && typeof v.group === 'string' && typeof v.version === 'string' && typeof v.kind === 'string';
}

function isGvr(value: unknown): value is GroupVersionResource {
  const v = value as Partial<GroupVersionResource> | null;
  return v !== null && typeof v === 'object' && typeof v.group === 'string' && typeof v.version === 'string' && typeof v.resource === 'string';
}
