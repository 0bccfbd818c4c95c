# akv-injector: one image, both roles (webhook and the fetch init container).
# Build: the project's own lockfile and bundler. Warm: the fetch's compile cache. Run: distroless Node.js 24,
# non-root, only dist/ (with dist/compile-cache).

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

# Warm-up: the fetch's compile cache, made by the runtime image's own Node binary as its user (Node keys the
# cache by version and uid, and reads it from the read-only root filesystem only when that key's folder exists).
FROM gcr.io/distroless/nodejs24-debian12:nonroot AS warm
COPY --from=build --chown=65532:65532 /src/dist /app/dist
USER 65532:65532
RUN ["/nodejs/bin/node", "--max-semi-space-size=1", "/app/dist/compile-cache-warm-up.js"]

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=warm /app/dist /app/dist
USER 65532:65532
ENV NODE_ENV=production
# The role is the first argument: `webhook ...flags` or `fetch`. A 1 MiB young generation keeps the
# fetch under its 128Mi limit when a hostile server answers 64 reads at once with its largest bodies
# (Node 24 peaked at 120-133 MiB without it); the webhook's Deployment sets it too, in NODE_OPTIONS.
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=1", "/app/dist/cli.js"]
CMD ["help"]
