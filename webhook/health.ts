// The plain-HTTP side port: liveness, readiness and Prometheus metrics, apart from the admission listener.
import type http from 'node:http';
import { fastify, LogController, type FastifyInstance } from 'fastify';
import type { Logger } from '../src/log.js';
import { WITHOUT_SCHEMA_COMPILERS } from './fastify-options.js';
import type { WebhookMetrics } from './metrics.js';

export type HealthApp = FastifyInstance<http.Server, http.IncomingMessage, http.ServerResponse, Logger>;

export interface HealthOptions {
  /** Why the webhook is not ready (TLS not loaded, caches not synced, shutting down); empty when ready. */
  notReadyReasons: () => readonly string[];
  metrics: WebhookMetrics;
  logger: Logger;
}

/** `/healthz` (200 while the process serves), `/readyz` (200 or 503 with the reasons), `/metrics`. */
export function buildHealthApp(options: HealthOptions): HealthApp {
  const app: HealthApp = fastify({
    loggerInstance: options.logger,
    logController: new LogController({ disableRequestLogging: true }),
    schemaController: WITHOUT_SCHEMA_COMPILERS,
  });
  const { registry } = options.metrics;

  app.get('/healthz', async (_req, reply) => reply.send({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const reasons = options.notReadyReasons();
    if (reasons.length === 0) return reply.send({ status: 'ready' });
    return reply.code(503).send({ status: 'not ready', reason: reasons.join('; '), reasons });
  });

  app.get('/metrics', async (_req, reply) => {
    const text = await registry.metrics();
    return reply.header('content-type', registry.contentType).send(text);
  });

  app.setNotFoundHandler((req, reply) => {
    return reply
      .code(404)
      .send({ error: 'Not Found', message: `${req.method} ${req.url.split('?')[0] ?? ''} not found: this port serves /healthz, /readyz and /metrics` });
  });

  return app;
}
