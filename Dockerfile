# One image recipe for every service: docker compose builds it once per service with SERVICE set.
FROM node:20-bookworm-slim AS build
ARG SERVICE
WORKDIR /app
COPY package.json package-lock.json turbo.json tsconfig.base.json ./
COPY infra/package.json infra/package.json
COPY packages packages
COPY apps apps
RUN npm ci --no-audit --no-fund && npx turbo run build --filter=@pipp/${SERVICE}... && npm prune --omit=dev

FROM node:20-bookworm-slim
ARG SERVICE
ENV NODE_ENV=production SERVICE=${SERVICE} HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app /app
USER node
CMD ["sh", "-c", "exec node apps/${SERVICE}/dist/server.js"]
