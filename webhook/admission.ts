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

function isGvk(value: unknown): value is GroupVersionKind {
  const v = value as Partial<GroupVersionKind> | null;
  return v !== null && typeof v === 'object' && typeof v.group === 'string' && typeof v.version === 'string' && typeof v.kind === 'string';
}

function isGvr(value: unknown): value is GroupVersionResource {
  const v = value as Partial<GroupVersionResource> | null;
  return v !== null && typeof v === 'object' && typeof v.group === 'string' && typeof v.version === 'string' && typeof v.resource === 'string';
}
