# The server image: Node 20, production dependencies only; TypeScript runs through the swc loader.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY scripts ./scripts
COPY src ./src
COPY migrations ./migrations
COPY profiles ./profiles
COPY terminology ./terminology
# DATA_DIR: the secrets key file (unless SECRETS_KEY is set), on a volume the server and the workers share
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 8080
CMD ["node", "--import", "./scripts/register-ts.mjs", "src/main.ts"]
