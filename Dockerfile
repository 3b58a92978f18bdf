# Attune: multi-stage image. The build stage compiles better-sqlite3 (node-gyp needs python3, make, g++);
# the runtime stage carries only node_modules, the code and the committed default model, and runs as
# a non-root user. Data and models are volumes.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
# The web client is built here with Vite (a dev dependency), then the dev dependencies go.
COPY client ./client
RUN node --import tsx client/build.ts && npm prune --omit=dev
COPY server ./server
# The CLI (retrain, lm, sim) ships too; its commands import the sandbox.
COPY cli ./cli
COPY sandbox ./sandbox
COPY migrations ./migrations
COPY models ./models
COPY tsconfig.json ./

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    ATTUNE_DATA_DIR=/data \
    ATTUNE_MODEL_DIR=/app/models/default
WORKDIR /app
COPY --from=build --chown=node:node /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data", "/app/models"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/readyz').then(r => process.exit(r.ok ? 0 : 1)).catch(() => process.exit(1))"
CMD ["node", "--import", "tsx", "server/main.ts"]
