// The admission endpoint: HTTP only (content type, body, decode, echo the uid), the decision is the mutator's.
import type http from 'node:http';
import type https from 'node:https';
import { fastify, LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from '../src/log.js';
import { decodeReview, serializeReview, summarize, type AdmissionSummary } from './admission.js';
import { createBodyBudget, type BodyBudget, type BodyBudgetOptions, type Release } from './body-budget.js';
import { WITHOUT_SCHEMA_COMPILERS } from './fastify-options.js';
import { parseJsonBody } from './json-body.js';
import type { AdmissionOutcome, WebhookMetrics } from './metrics.js';
import type { MutationResult, Mutator } from './mutate.js';

/** The API server sends at most 3 MiB of object (twice that for an UPDATE's oldObject): stay above it. */
export const DEFAULT_BODY_LIMIT = 4 * 1024 * 1024;
export const MIN_BODY_LIMIT = 3 * 1024 * 1024;

/**
 * Memory: the bytes of request bodies taken in at once (see body-budget.ts). Measured on Node 24 with the
 * Deployment's Node flags: the process idles at ~95 MiB, and one 4 MiB body of the costliest shape under the value
 * bound (json-body.ts) lifts it to ~175 MiB, two at once past 256 MiB; so large bodies go one 4 MiB at a time, and
 * 2 MiB stay for ordinary pods (40 of 50 KB, 400 of 5 KB) whatever large ones do (test/server-abuse.ts).
 */
export const DEFAULT_BODY_BUDGET: BodyBudgetOptions = { totalBytes: 6 * 1024 * 1024, largeBytes: 4 * 1024 * 1024, smallBodyBytes: 64 * 1024 };

/**
 * Time bounds, in ms, set against the API server's webhook client: it sends the whole body at once and gives up
 * after timeoutSeconds (5 s in manifests/base, 30 s at most), and closes its idle keep-alive connections after 90 s
 * (Go's http.Transport IdleConnTimeout, which client-go keeps).
 */
export const TIMEOUTS = {
  /** A request waits at most this long for room in the body budget, then gets a 503: the API server still has time to hear it. */
  budgetWaitMs: 2_000,
  /** Complete TLS handshake. */
  handshakeMs: 10_000,
  /** Complete request headers. */
  headersMs: 5_000,
  /** Complete request, headers and body: a trickling client is cut after this, within one checking interval more. */
  requestMs: 10_000,
  /** How often Node looks for requests past headersMs or requestMs. */
  checkingIntervalMs: 1_000,
  /** Idle keep-alive connection: longer than the API server's 90 s, so it is always the client that closes one (a server closing first races a new request, which then fails). */
  keepAliveMs: 100_000,
  /** Socket inactivity before the first request's answer; past the API server's 30 s longest webhook timeout no answer is awaited. */
  socketIdleMs: 30_000,
} as const;

/**
 * Open connections at once; past it new ones are refused at accept. A TLS connection with a request under way
 * costs ~90 KiB (measured), so 512 hold ~45 MiB; the API servers keep a few dozen to each replica.
 */
export const MAX_CONNECTIONS = 512;

export type WebhookApp = FastifyInstance<http.Server, http.IncomingMessage, http.ServerResponse, Logger>;

export interface BuildAppOptions {
  mutator: Mutator;
  logger: Logger;
  /** Largest request body in bytes; default 4 MiB, at least 3 MiB. */
  bodyLimit?: number;
  metrics?: WebhookMetrics;
  /** Body bytes taken in at once; default one of DEFAULT_BODY_BUDGET. Its large-body share must hold one body of bodyLimit. */
  bodyBudget?: BodyBudget;
  /** How long a request waits for room in the body budget; default TIMEOUTS.budgetWaitMs. */
  budgetWaitMs?: number;
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
  const budget = options.bodyBudget ?? createBodyBudget(DEFAULT_BODY_BUDGET);
  if (budget.options.largeBytes < bodyLimit) {
    throw new RangeError(`the body budget's large share (${budget.options.largeBytes} bytes) must hold one body of bodyLimit (${bodyLimit} bytes)`);
  }
  const budgetWaitMs = options.budgetWaitMs ?? TIMEOUTS.budgetWaitMs;
  const nodeServer: http.ServerOptions = {
    headersTimeout: TIMEOUTS.headersMs,
    requestTimeout: TIMEOUTS.requestMs,
    keepAliveTimeout: TIMEOUTS.keepAliveMs,
    connectionsCheckingInterval: TIMEOUTS.checkingIntervalMs,
  };
  const base = {
    loggerInstance: options.logger,
    // One line per admission, written by the handler, instead of fastify's two per request.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request: the admission line names its request by uid.
    childLoggerFactory: (logger: FastifyBaseLogger) => logger,
    bodyLimit,
    schemaController: WITHOUT_SCHEMA_COMPILERS,
    return503OnClosing: true,
    // fastify sets these on the server itself, over what the server was created with.
    requestTimeout: TIMEOUTS.requestMs,
    keepAliveTimeout: TIMEOUTS.keepAliveMs,
    connectionTimeout: TIMEOUTS.socketIdleMs,
  };
  const app: WebhookApp =
    options.https === undefined
      ? fastify({ ...base, http: nodeServer })
      : fastify({ ...base, https: { ...nodeServer, handshakeTimeout: TIMEOUTS.handshakeMs, ...options.https } });
  app.server.maxConnections = MAX_CONNECTIONS;
  const { mutator, metrics } = options;
  // JSON only: fastify's text/plain parser would hand a string to decodeReview instead of a 415.
  app.removeContentTypeParser('text/plain');
  // The body as bytes: json-body.ts parses it in the handler, once the budget has room for it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const count = (outcome: AdmissionOutcome, reply: FastifyReply, shared?: boolean): void => {
    metrics?.observeAdmission(outcome, reply.elapsedTime / 1000, shared);
  };
  // A request we cannot answer with an AdmissionReview: a JSON error, a warning (never the body) and the metric.
  const reject = (reply: FastifyReply, status: number, message: string): FastifyReply => {
    count('invalid', reply);
    reply.log.warn({ status, message, ms: round(reply.elapsedTime) }, 'admission request rejected');
    return reply.code(status).send(errorBody(status, message));
  };

  /** Room in the budget for `bytes` until the answer is sent; false (a 503 sent, or the client gone) when none came in time. */
  const admit = async (reply: FastifyReply, bytes: number): Promise<boolean> => {
    const now = budget.tryAcquire(bytes);
    if (now !== undefined) return holdUntilClosed(reply, now);
    const waitedFrom = performance.now();
    // A timer of our own rather than AbortSignal.timeout, which Node 20 may collect before it fires when combined.
    const giveUp = new AbortController();
    const timer = setTimeout(() => giveUp.abort(), budgetWaitMs);
    let gone = false;
    const onClose = (): void => {
      gone = true;
      giveUp.abort();
    };
    reply.raw.once('close', onClose);
    const release = await budget.acquire(bytes, giveUp.signal);
    clearTimeout(timer);
    reply.raw.off('close', onClose);
    if (release !== undefined) return holdUntilClosed(reply, release);
    if (gone) return false;
    count('busy', reply);
    const waitedMs = round(performance.now() - waitedFrom);
    reply.log.warn({ status: 503, bodyBytes: bytes, waitedMs, budget: budget.usage() }, 'admission request shed: the body budget stayed full');
    // Close the connection: an unread body is not worth reading.
    void reply
      .code(503)
      .header('connection', 'close')
      .header('retry-after', '1')
      .send(errorBody(503, `akv-injector is busy: ${bytes} more body bytes did not fit in its memory budget within ${budgetWaitMs} ms; retry`));
    return false;
  };
  const { smallBodyBytes } = budget.options;

  // A large body is charged before it is read, its socket unread meanwhile so TCP holds the sender back. A small
  // one is charged once it has arrived (in the handler): a slow sender of one holds no budget, only a connection.
  // Callback style: a small body, the common case, passes with no promise made.
  app.addHook('onRequest', (req, reply, done) => {
    const declared = bodyCharge(req.headers, bodyLimit);
    if (declared <= smallBodyBytes) return done();
    if (declared > bodyLimit) {
      void reject(reply, 413, tooLarge(bodyLimit));
      return done();
    }
    // Once admitted (or answered): fastify goes no further for a reply already sent.
    admit(reply, declared).then(() => done(), done);
  });

  /** The answer to an admission: counted, logged (names only), and sent. */
  const answer = (reply: FastifyReply, summary: AdmissionSummary, result: MutationResult, review: string): FastifyReply => {
    count(result.outcome, reply, result.shared);
    reply.log.info(
      { ...summary, outcome: result.outcome, reason: result.reason, ...(result.shared ? { shared: true } : {}), ms: round(reply.elapsedTime) },
      'admission',
    );
    // Serialized by the mutator or here, once, with the header fastify would give it, so fastify sends the text as it is.
    return reply.header('content-type', JSON_TYPE).send(review);
  };

  app.post('/mutate', async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (bodyCharge(req.headers, bodyLimit) <= smallBodyBytes && body.length > 0 && !(await admit(reply, body.length))) return reply;
    // A replica of a template already answered is told by its bytes, before it is parsed.
    const replica = body.length > 0 ? await mutator.replica?.(body) : undefined;
    if (replica !== undefined) return answer(reply, replica.summary, replica.result, replica.review);
    const parsed = parseJsonBody(body);
    if (!parsed.ok) return reject(reply, parsed.status, parsed.message);
    const decoded = decodeReview(parsed.value);
    if (!decoded.ok) return reject(reply, 400, decoded.message);
    const { request } = decoded;

    let result: MutationResult;
    try {
      result = await mutator(request, body);
    } catch (error) {
      // failurePolicy is the cluster's choice: answer 500 and let the API server apply it.
      count('error', reply);
      req.log.error({ ...summarize(request), outcome: 'error', err: error, ms: round(reply.elapsedTime) }, 'admission failed');
      return reply.code(500).send(errorBody(500, `akv-injector could not process admission request ${request.uid}; see the webhook's logs`));
    }
    // The API server matches the answer to its request by uid: it is always the request's.
    return answer(reply, summarize(request), result, serializeReview({ ...result.response, uid: request.uid }));
  });

  app.setErrorHandler((error: FastifyError, req, reply) => {
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) {
      req.log.error({ err: error, url: req.url }, 'request failed');
      return reply.code(500).send(errorBody(500, "internal error; see the webhook's logs"));
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
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return tooLarge(bodyLimit);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'the body does not match its content-length';
  }
  return error.message;
}

/** Keep the budget until the response is over (sent, or its connection gone); false, given back, when it already is. */
function holdUntilClosed(reply: FastifyReply, release: Release): boolean {
  if (reply.raw.closed) {
    release();
    return false;
  }
  reply.raw.once('close', release);
  return true;
}

function tooLarge(bodyLimit: number): string {
  return `the body is larger than the limit of ${bodyLimit} bytes`;
}

/** The bytes a request's body is charged: its content-length (Node's parser has checked it), the whole limit when sent in chunks. */
function bodyCharge(headers: http.IncomingHttpHeaders, bodyLimit: number): number {
  const length = headers['content-length'];
  if (length !== undefined) return Number(length);
  return headers['transfer-encoding'] === undefined ? 0 : bodyLimit;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function errorBody(status: number, message: string): ErrorBody {
  return { error: STATUS_TEXT[status] ?? `HTTP ${status}`, message };
}

const JSON_TYPE = 'application/json; charset=utf-8';

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
