// What both of the webhook's fastify servers (admission and health) are built with beyond their own options.
import type { FastifyServerOptions } from 'fastify';

/**
 * No route of ours declares a schema (the admission handler checks the AdmissionReview itself), so fastify's default
 * compilers, ajv and fast-json-stringify, would be loaded for nothing at every start (fastify requires them only when
 * no factory is given). A schema added later fails when its route is registered, naming this.
 */
export const WITHOUT_SCHEMA_COMPILERS: NonNullable<FastifyServerOptions['schemaController']> = {
  compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas },
};

function noSchemas(): never {
  throw new Error("the webhook's fastify servers load no schema compiler (webhook/fastify-options.ts): check input in the handler instead");
}
