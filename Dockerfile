# akv-injector: one image, both roles (webhook and the fetch init container).
# Build: the project's own lockfile and bundler. Warm: the fetch's code cache. Run: distroless Node.js 24,
# non-root, only dist/ (with dist/code-cache).

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.js scripts/build.js
COPY cli cli
COPY src src
COPY webhook webhook
RUN npm run build

# Warm-up: the fetch's code cache, made by the runtime image's own Node binary as its user, with the fetch's
# NODE_OPTIONS (V8 uses a code cache only under the version and flags it was made with), from a fetch rehearsed
# against a stand-in Entra ID and Key Vault on the loopback interface (no network needed).
FROM gcr.io/distroless/nodejs24-debian12:nonroot AS warm
COPY --from=build --chown=65532:65532 /src/dist /app/dist
USER 65532:65532
ENV NODE_OPTIONS=--max-semi-space-size=1
RUN ["/nodejs/bin/node", "/app/dist/code-cache-warm-up.mjs"]

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=warm /app/dist /app/dist
USER 65532:65532
# NODE_OPTIONS is the default of the roles the webhook injects (fetch, refresh: their containers set none). A 1 MiB
# young generation keeps the fetch under its 128Mi limit when a hostile server answers 64 reads at once with its
# largest bodies (Node 24 peaked at 120-133 MiB without it). The webhook's Deployment sets NODE_OPTIONS of its own
# (a 4 MiB young generation), which replaces this one.
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=1
# The role is the first argument: `webhook ...flags`, `fetch` or `refresh`.
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
CMD ["help"]
