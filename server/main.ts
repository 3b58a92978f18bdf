// Start-up: config → model (loaded and checked in full) → database and migrations → first admin → app → listen.
// SIGINT/SIGTERM stop accepting connections, let open requests finish (up to the grace period),
// then close the engine and the database.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type Config, ConfigError, configHelp, loadConfigFromProcess, wantsHelp } from './config.ts';
import { openDatabase, type Db } from './db/connection.ts';
import { runMigrations } from './db/migrate.ts';
import { createRepositories } from './db/repositories.ts';
import { createApp } from './http/app.ts';
import { answerClientErrors } from './http/client-errors.ts';
import { Engine } from './lm/engine.ts';
import { PersonalizationService } from './personalize/personalization-service.ts';
import { createLogger } from './logger.ts';
import { attachRealtime } from './realtime/index.ts';
import { observeEngine } from './metrics.ts';
import type { ChatDeps } from './services/chat.ts';
import { createChat, createCompletions, createServices } from './services/index.ts';
import { createTrainingService } from './services/training.ts';

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

export interface RunningServer {
  server: http.Server;
  port: number;
  close(): Promise<void>;
}

function assertModelPresent(config: Config): void {
  if (!fs.existsSync(path.join(config.modelDir, 'config.json'))) {
    throw new StartupError(
      `no model at ${config.modelDir} (config.json is missing): train the default model with \`npm run train:default-model\`, ` +
        'or point ATTUNE_MODEL_DIR (--model-dir) at a Hugging Face-layout model directory',
    );
  }
}

async function loadEngine(config: Config, logger: Logger): Promise<Engine> {
  const started = Date.now();
  const engine = await Engine.load(config.modelDir, { threads: config.engineThreads, maxBatch: config.engineMaxBatch });
  logger.info({ modelDir: config.modelDir, ms: Date.now() - started }, 'model loaded');
  return engine;
}

export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  let db: Db | null = null;
  let engine: Engine | null = null;
  try {
    // The model is loaded and checked in full (config, tokenizer, every weight's name, shape, dtype
    // and values) before the database is opened: a model that cannot serve leaves no database and
    // no admin account behind.
    assertModelPresent(config);
    engine = await loadEngine(config, logger);
    const loadedEngine = engine;
    db = openDatabase(config.dbFile);
    const migrations = runMigrations(db);
    logger.info({ dbFile: config.dbFile, applied: migrations.applied, alreadyApplied: migrations.alreadyApplied.length }, 'database ready');

    const repos = createRepositories(db);
    const services = createServices({ db, config, logger, repos });
    const admin = await services.auth.bootstrapAdmin();
    if (admin.created && admin.generatedPassword) {
      // Shown once, by design: the hash is all that is stored.
      logger.warn({ username: admin.username, password: admin.generatedPassword }, 'created the first admin with a random password: note it now, it is not shown again');
    } else if (admin.created) {
      logger.info({ username: admin.username }, 'created the first admin with ATTUNE_ADMIN_PASSWORD');
    }

    let modelReady = true;
    // One set of chat dependencies for the socket chat and the OpenAI-compatible API, so both answer
    // with the same engine and the same per-user soft prompts.
    const personalization = new PersonalizationService({
      db, repos, logger, modelDir: config.modelDir, modelFingerprint: loadedEngine.runtime.files.id,
      settings: PersonalizationService.settingsFromConfig(config),
    });
    personalization.start();
    const training = createTrainingService(personalization);
    const chatDeps: ChatDeps = { engine: loadedEngine, modelName: path.basename(config.modelDir), userModels: personalization };
    const chat = createChat({ db, config, logger, repos }, chatDeps);
    const completions = createCompletions({ db, config, logger, repos }, chatDeps);
    observeEngine(loadedEngine.scheduler);
    const app = createApp({ config, db, services, logger, isModelReady: () => modelReady, completions, training });
    const server = http.createServer(app);
    answerClientErrors(server);
    const io = attachRealtime(server, { config, services, chat, logger, personalization: training });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const port = (server.address() as AddressInfo).port;
    logger.info({ host: config.host, port }, `listening on http://${config.host}:${port}`);

    const openDb = db;
    let closing: Promise<void> | null = null;
    const close = () =>
      (closing ??= (async () => {
        modelReady = false;
        // Disconnecting aborts the answers in flight; each is stored as partial.
        io.disconnectSockets(true);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const grace = setTimeout(() => server.closeAllConnections(), config.shutdownGraceSeconds * 1000);
        await closed;
        clearTimeout(grace);
        // A job cut short here is recorded as cancelled; one cut by a crash is failed at next start.
        await personalization.close();
        await loadedEngine.close();
        openDb.close();
      })());
    return { server, port, close };
  } catch (e) {
    await engine?.close().catch(() => undefined);
    db?.close();
    throw e;
  }
}

/** What the fatal line carries besides the message: the error's code and details, never its stack. */
function startupFailureFields(e: unknown): Record<string, unknown> {
  if (!(e instanceof Error)) return {};
  const fields: Record<string, unknown> = { error: e.name };
  const { code, details } = e as Error & { code?: unknown; details?: unknown };
  if (typeof code === 'string' || typeof code === 'number') fields.code = code;
  if (details !== null && typeof details === 'object') fields.details = details;
  return fields;
}

async function main(): Promise<void> {
  if (wantsHelp()) {
    process.stdout.write(configHelp());
    return;
  }
  let config: Config;
  try {
    config = loadConfigFromProcess();
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`attune: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
  const logger = createLogger(config);
  let running: RunningServer;
  try {
    running = await startServer(config, logger);
  } catch (e) {
    // The message names the file and the cause; a stack trace would only bury it (it is logged at debug).
    logger.fatal(startupFailureFields(e), `start-up failed: ${e instanceof Error ? e.message : String(e)}`);
    logger.debug({ err: e }, 'start-up failure');
    process.exitCode = 1;
    return;
  }
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal }, 'shutting down');
    running.close().then(
      () => {
        logger.info('stopped');
        process.exitCode = 0;
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

const isEntryPoint = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint) await main();
