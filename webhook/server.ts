// The admission endpoint: HTTP only (content type, body, decode, echo the uid), the decision is the mutator's.
import type http from 'node:http';
import type https from 'node:https';
import { fastify, LogController, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from '../src/log.js';
import { decodeReview, encodeReview, type AdmissionRequest } from './admission.js';
import type { AdmissionOutcome, WebhookMetrics } from './metrics.js';
import type { MutationResult, Mutator } from './mutate.js';

/** The API server sends at most 3 MiB of object (twice that for an UPDATE's oldObject): stay above it. */
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
export const MIN_BODY_LIMIT = 3 * 1024 * 1024;

export type WebhookApp = FastifyInstance<http.Server, http.IncomingMessage, http.ServerResponse, Logger>;

export interface BuildAppOptions {
  mutator: Mutator;
  logger: Logger;
  /** Largest request body in bytes; default 4 MiB, at least 3 MiB. */
  bodyLimit?: number;
  metrics?: WebhookMetrics;
  /** Serve HTTPS with these options (main sets minVersion TLSv1.2); without them, plain HTTP (tests). */
  https?: https.ServerOptions;
}

interface ErrorBody {
  error: string;
  message: string;
}

/** The webhook's fastify app with `POST /mutate`; the caller listens (or injects). */
export function buildApp(options: BuildAppOptions): WebhookApp {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isInteger(bodyLimit) || bodyLimit < MIN_BODY_LIMIT) {
    throw new RangeError(`bodyLimit must be a whole number of bytes ≥ ${MIN_BODY_LIMIT} (3 MiB, the API server's largest object), got ${bodyLimit}`);
  }
  const base = {
    loggerInstance: options.logger,
    // One line per admission, written by the handler, instead of fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    return503OnClosing: true,
  };
  const app: WebhookApp = options.https === undefined ? fastify(base) : fastify({ ...base, https: options.https });
  const { mutator, metrics } = options;
  // JSON only: fastify's text/plain parser would hand a string to decodeReview instead of a 415.
  app.removeContentTypeParser('text/plain');

  const count = (outcome: AdmissionOutcome, reply: FastifyReply): void => {
    metrics?.observeAdmission(outcome, reply.elapsedTime / 1000);
  };
  // A request we cannot answer with an AdmissionReview: a JSON error, a warning (never the body) and the metric.
  const reject = (reply: FastifyReply, status: number, message: string): FastifyReply => {
    count('invalid', reply);
    reply.log.warn({ status, message, ms: round(reply.elapsedTime) }, 'admission request rejected');
    return reply.code(status).send(errorBody(status, message));
  };

  app.post('/mutate', async (req, reply) => {
    if (req.body === undefined || req.body === null) {
      return reject(reply, 400, 'the body is empty: expected an AdmissionReview (admission.k8s.io/v1)');
    }
    const decoded = decodeReview(req.body);
    if (!decoded.ok) return reject(reply, 400, decoded.message);
    const { request } = decoded;

    let result: MutationResult;
    try {
      result = await mutator(request);
    } catch (error) {
      // failurePolicy is the cluster's choice: answer 500 and let the API server apply it.
      count('error', reply);
      req.log.error({ ...describe(request), outcome: 'error', err: error, ms: round(reply.elapsedTime) }, 'admission failed');
      return reply.code(500).send(errorBody(500, `akv-injector could not process admission request ${request.uid}; see the webhook's logs`));
    }
    count(result.outcome, reply);
    req.log.info({ ...describe(request), outcome: result.outcome, reason: result.reason, ms: round(reply.elapsedTime) }, 'admission');
    // The API server matches the answer to its request by uid: it is always the request's.
    return reply.code(200).send(encodeReview({ ...result.response, uid: request.uid }));
  });

  app.setErrorHandler((error: FastifyError, req, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) {
      req.log.error({ err: error, url: req.url }, 'request failed');
      return reply.code(500).send(errorBody(500, 'internal error; see the webhook\'s logs'));
    }
    return reject(reply, status, clientErrorMessage(error, req.headers['content-type'], bodyLimit));
  });

  app.setNotFoundHandler((req, reply) => {
    return reply.code(404).send(errorBody(404, `${req.method} ${req.url.split('?')[0] ?? ''} not found: the webhook serves POST /mutate`));
  });

  return app;
}

// Messages of our own: the JSON parser's quote the body, which is not for logs.
function clientErrorMessage(error: FastifyError, contentType: string | undefined, bodyLimit: number): string {
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `content-type must be application/json, got ${JSON.stringify(contentType ?? null)}`;
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'the body is not valid JSON';
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return 'the body is empty: expected an AdmissionReview (admission.k8s.io/v1)';
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `the body is larger than the limit of ${bodyLimit} bytes`;
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'the body does not match its content-length';
  }
  if (error instanceof SyntaxError) return 'the body is not valid JSON';
  return error.message;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
};

function errorBody(status: number, message: string): ErrorBody {
  return { error: STATUS_TEXT[status] ?? `HTTP ${status}`, message };
}

/** The request's identity for the log: names only, never the object's content. */
function describe(request: AdmissionRequest): Record<string, string | undefined> {
  const metadata = objectMetadata(request.object);
  return {
    uid: request.uid,
    namespace: request.namespace ?? metadata.namespace,
    pod: request.name ?? metadata.name ?? metadata.generateName,
    operation: request.operation,
    resource: [request.resource.group || undefined, request.resource.version, request.resource.resource, request.subResource]
      .filter((part) => part !== undefined && part !== '')
      .join('/'),
  };
}

function objectMetadata(object: unknown): { name?: string; generateName?: string; namespace?: string } {
  if (object === null || typeof object !== 'object') return {};
  const metadata = (object as { metadata?: unknown }).metadata;
  if (metadata === null || typeof metadata !== 'object') return {};
  const m = metadata as Record<string, unknown>;
  const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
  return { name: text(m.name), generateName: text(m.generateName), namespace: text(m.namespace) };
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
