# akv-injector: one image, both roles (webhook and the fetch init container).
# Build: the project's own lockfile and bundler. Run: distroless Node.js 24, non-root, only dist/.

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.js scripts/build.js
COPY src src
COPY webhook webhook
RUN npm run build

FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
COPY --from=build /src/dist /app/dist
USER 65532:65532
ENV NODE_ENV=production
# The role is the first argument: `webhook ...flags` or `fetch`.
ENTRYPOINT ["/nodejs/bin/node", "/app/dist/cli.js"]
CMD ["help"]
