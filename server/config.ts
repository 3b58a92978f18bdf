// Every setting of the server, in one zod schema. Each field names its environment variable and its
// command-line flag (flags win over the environment), and documents its default. This is the only
// module that reads process.env.
//
//   npm start -- --port 8080 --model-dir models/mine
//   PORT=8080 ATTUNE_MODEL_DIR=models/mine npm start
//   npm start -- --help          (prints this table)
import path from 'node:path';
import { z } from 'zod';
import { SAMPLING_LIMITS } from './lm/sampling.ts';

interface SettingMeta {
  env: string;
  /** Flag name without the leading dashes; null when the setting is environment-only (secrets). */
  flag: string | null;
  doc: string;
}

const setting = <S extends z.ZodType>(schema: S, meta: SettingMeta): S => schema.meta({ setting: meta }) as S;

const int = (min: number, max: number) => z.coerce.number({ error: 'must be a number' }).int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
const num = (min: number, max: number) => z.coerce.number({ error: 'must be a number' }).min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
const bool = () => z.stringbool({ error: 'must be true or false (also 1/0, yes/no, on/off)' });

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** 'off' (or unset) → null; '*' → any origin; else a comma-separated list of exact origins. */
const corsOrigins = z.string().transform((raw, ctx): '*' | string[] | null => {
  const s = raw.trim();
  if (s === '' || s === 'off') return null;
  if (s === '*') return '*';
  const origins = s.split(',').map((o) => o.trim()).filter(Boolean);
  for (const o of origins) {
    let ok = false;
    try {
      ok = new URL(o).origin === o;
    } catch {
      ok = false;
    }
    if (!ok) ctx.addIssue({ code: 'custom', message: `"${o}" is not an origin like https://chat.example.com (no path, no trailing slash)` });
  }
  return origins;
});

export const configSchema = z.object({
  port: setting(int(0, 65535).default(3000), { env: 'PORT', flag: 'port', doc: 'TCP port to listen on (0 picks a free one). Default 3000.' }),
  host: setting(z.string().min(1).default('127.0.0.1'), {
    env: 'HOST',
    flag: 'host',
    doc: 'Interface to bind. Default 127.0.0.1 (this machine only); use 0.0.0.0 in a container or behind a reverse proxy on another host.',
  }),
  dataDir: setting(z.string().min(1).default('./data'), { env: 'ATTUNE_DATA_DIR', flag: 'data-dir', doc: 'Directory for the database and user-model files. Default ./data.' }),
  modelDir: setting(z.string().min(1).default('models/default'), { env: 'ATTUNE_MODEL_DIR', flag: 'model-dir', doc: 'Hugging Face-layout model directory to serve. Default models/default.' }),
  dbFile: setting(z.string().min(1).optional(), { env: 'ATTUNE_DB_FILE', flag: 'db-file', doc: 'SQLite database file. Default <data dir>/attune.db.' }),
  adminPassword: setting(z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters').optional(), {
    env: 'ATTUNE_ADMIN_PASSWORD',
    flag: null,
    doc: "Password of the first admin ('admin'), used once when the database has no admin. Unset: a random one is generated and logged once. Environment only, so it never shows in `ps`.",
  }),
  logLevel: setting(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'), { env: 'ATTUNE_LOG_LEVEL', flag: 'log-level', doc: 'pino log level. Default info.' }),
  corsOrigin: setting(corsOrigins.default(null), {
    env: 'ATTUNE_CORS_ORIGIN',
    flag: 'cors-origin',
    doc: "Origins allowed to call the API from a browser: a comma-separated list, '*', or off. Default off (same origin only).",
  }),
  publicOrigin: setting(
    z.string().trim().refine((o) => URL.canParse(o) && new URL(o).origin === o, 'must be an origin like https://chat.example.com (no path, no trailing slash)').optional(),
    {
      env: 'ATTUNE_PUBLIC_ORIGIN',
      flag: 'public-origin',
      doc: "The origin browsers see the server at (e.g. https://chat.example.com), for the CSRF check of cookie-authenticated writes when a reverse proxy does not pass the Host and X-Forwarded-Proto it was reached with. Default unset: the request's own scheme and Host (X-Forwarded-* only under ATTUNE_TRUST_PROXY).",
    },
  ),
  sessionTtlHours: setting(num(0.01, 24 * 365).default(168), { env: 'ATTUNE_SESSION_TTL_HOURS', flag: 'session-ttl-hours', doc: 'Lifetime of a sign-in session. Default 168 (7 days).' }),
  cookieSecure: setting(bool().default(false), {
    env: 'ATTUNE_COOKIE_SECURE',
    flag: 'cookie-secure',
    doc: 'Served over HTTPS: mark the session cookie Secure and send HSTS. Default false (plain HTTP, e.g. localhost).',
  }),
  trustProxy: setting(int(0, 10).default(0), {
    env: 'ATTUNE_TRUST_PROXY',
    flag: 'trust-proxy',
    doc: 'Number of reverse proxies in front of the server whose X-Forwarded-For is trusted (rate limits key on the client IP). Default 0.',
  }),
  authRateLimit: setting(int(1, 1_000_000).default(10), {
    env: 'ATTUNE_AUTH_RATE_LIMIT',
    flag: 'auth-rate-limit',
    doc: 'Login and registration attempts allowed per client IP per window. Default 10.',
  }),
  authRateWindowSeconds: setting(int(1, 86_400).default(60), { env: 'ATTUNE_AUTH_RATE_WINDOW_SECONDS', flag: 'auth-rate-window-seconds', doc: 'Window of the login/registration limit. Default 60.' }),
  chatRateLimit: setting(int(1, 1_000_000).default(30), { env: 'ATTUNE_CHAT_RATE_LIMIT', flag: 'chat-rate-limit', doc: 'Chat generations allowed per user per window. Default 30.' }),
  chatRateWindowSeconds: setting(int(1, 86_400).default(60), { env: 'ATTUNE_CHAT_RATE_WINDOW_SECONDS', flag: 'chat-rate-window-seconds', doc: 'Window of the per-user chat limit. Default 60.' }),
  maxMessageChars: setting(int(1, 1_000_000).default(8000), { env: 'ATTUNE_MAX_MESSAGE_CHARS', flag: 'max-message-chars', doc: 'Longest user message accepted, in characters. Default 8000.' }),
  maxBodyBytes: setting(int(1024, 64 * 1024 * 1024).default(256 * 1024), { env: 'ATTUNE_MAX_BODY_BYTES', flag: 'max-body-bytes', doc: 'Largest JSON request body; larger ones get 413. Default 262144 (256 KiB).' }),
  abFraction: setting(num(0, 1).default(0), {
    env: 'ATTUNE_AB_FRACTION',
    flag: 'ab-fraction',
    doc: 'Fraction of chat turns answered with two candidates for an A/B choice. Default 0 (never).',
  }),
  maxNewTokens: setting(int(1, 32_768).default(256), { env: 'ATTUNE_MAX_NEW_TOKENS', flag: 'max-new-tokens', doc: 'Default cap on generated tokens per reply. Default 256.' }),
  temperature: setting(num(SAMPLING_LIMITS.temperature.min, SAMPLING_LIMITS.temperature.max).default(0.7), {
    env: 'ATTUNE_TEMPERATURE',
    flag: 'temperature',
    doc: 'Default sampling temperature (0 = greedy). Default 0.7.',
  }),
  topP: setting(num(SAMPLING_LIMITS.topP.min, SAMPLING_LIMITS.topP.max).default(0.95), { env: 'ATTUNE_TOP_P', flag: 'top-p', doc: 'Default nucleus sampling mass (1 = off). Default 0.95.' }),
  engineThreads: setting(int(1, 1024).optional(), { env: 'ATTUNE_ENGINE_THREADS', flag: 'engine-threads', doc: "onnxruntime intra-op threads. Default: onnxruntime's choice." }),
  engineMaxBatch: setting(int(1, 1024).default(32), { env: 'ATTUNE_ENGINE_MAX_BATCH', flag: 'engine-max-batch', doc: 'Most sequences decoded together. Default 32.' }),
  metricsToken: setting(z.string().min(16, 'must be at least 16 characters').max(256, 'must be at most 256 characters').optional(), {
    env: 'ATTUNE_METRICS_TOKEN',
    flag: null,
    doc: 'Bearer token a Prometheus scraper must send to GET /metrics. Unset: /metrics is open, like /healthz. Environment only.',
  }),
  shutdownGraceSeconds: setting(num(0, 600).default(10), {
    env: 'ATTUNE_SHUTDOWN_GRACE_SECONDS',
    flag: 'shutdown-grace-seconds',
    doc: 'On SIGINT/SIGTERM, how long open requests may finish before connections are cut. Default 10.',
  }),
  // ---- Personalization (P-DPO retraining) ----
  pdpoAlpha: setting(num(0, 1).default(0.5), { env: 'ATTUNE_PDPO_ALPHA', flag: 'pdpo-alpha', doc: "P-DPO's α: weight of each user's own term; 1 − α weighs the generic user's. 0 is vanilla DPO. Default 0.5 (the paper's)." }),
  pdpoBeta: setting(num(0.001, 10).default(0.1), { env: 'ATTUNE_PDPO_BETA', flag: 'pdpo-beta', doc: "DPO's β. Default 0.1." }),
  pdpoLr: setting(num(1e-6, 10).default(0.02), { env: 'ATTUNE_PDPO_LR', flag: 'pdpo-lr', doc: 'AdamW peak learning rate of the soft prompts (warmup, then cosine). Default 0.02.' }),
  pdpoEpochs: setting(int(1, 1000).default(4), { env: 'ATTUNE_PDPO_EPOCHS', flag: 'pdpo-epochs', doc: 'Passes over the training pairs per retraining. Default 4.' }),
  pdpoBatchPairs: setting(int(1, 256).default(8), { env: 'ATTUNE_PDPO_BATCH_PAIRS', flag: 'pdpo-batch-pairs', doc: 'Preference pairs per optimizer step. Default 8.' }),
  userModelTokens: setting(int(1, 64).default(10), { env: 'ATTUNE_USER_MODEL_TOKENS', flag: 'user-model-tokens', doc: 'T_u: soft-prompt length in vectors. Default 10 (the paper).' }),
  userModelKind: setting(z.enum(['individual', 'cluster'], { error: 'must be individual or cluster' }).default('individual'), {
    env: 'ATTUNE_USER_MODEL', flag: 'user-model', doc: 'individual (e_i = e_0 + o_i) or cluster (K shared embeddings, per-user softmax weights). Default individual.',
  }),
  userModelClusters: setting(int(1, 64).default(4), { env: 'ATTUNE_USER_MODEL_CLUSTERS', flag: 'user-model-clusters', doc: 'K for the cluster user model. Default 4.' }),
  heldoutFraction: setting(num(0, 0.9).default(0.2), { env: 'ATTUNE_HELDOUT_FRACTION', flag: 'heldout-fraction', doc: "Share of each user's pairs held out to evaluate a new version. Default 0.2." }),
  gateTolerance: setting(num(0, 1).default(0.02), {
    env: 'ATTUNE_GATE_TOLERANCE', flag: 'gate-tolerance',
    doc: "A new version is published only if its mean held-out reward accuracy is at least the current version's minus this. Default 0.02.",
  }),
  retrainCron: setting(z.string().min(1).default('0 * * * *'), { env: 'ATTUNE_RETRAIN_CRON', flag: 'retrain-cron', doc: "When scheduled retraining checks for new pairs (cron syntax, server time; 'off' disables). Default hourly." }),
  retrainMinNewPairs: setting(int(1, 10_000_000).default(50), { env: 'ATTUNE_RETRAIN_MIN_NEW_PAIRS', flag: 'retrain-min-new-pairs', doc: 'N: a scheduled run starts only if at least this many pairs arrived since the last one. Default 50.' }),
  retrainUserMinPairs: setting(int(1, 10_000_000).default(20), {
    env: 'ATTUNE_RETRAIN_USER_MIN_PAIRS', flag: 'retrain-user-min-pairs', doc: "M: a user's own retraining starts when they pass this many new pairs. Default 20.",
  }),
  retrainCheckSeconds: setting(int(1, 86_400).default(60), { env: 'ATTUNE_RETRAIN_CHECK_SECONDS', flag: 'retrain-check-seconds', doc: 'How often per-user thresholds are checked. Default 60.' }),
  trainerThreads: setting(int(1, 1024).default(2), {
    env: 'ATTUNE_TRAINER_THREADS', flag: 'trainer-threads',
    doc: 'onnxruntime threads of the retraining worker; chat shares the cores with it (on the default model its p95 time to first token stays well under 2× idle). Default 2.',
  }),
  trainerNice: setting(int(0, 19).default(10), {
    env: 'ATTUNE_TRAINER_NICE', flag: 'trainer-nice',
    doc: "Linux nice value of the retraining worker's threads, so chat is served first and training takes the idle CPU. Default 10; 0 = same priority.",
  }),
  trainBaseline: setting(bool().default(false), {
    env: 'ATTUNE_TRAIN_BASELINE', flag: 'train-baseline', doc: "Also train the vanilla-DPO baseline in every retraining job and record its held-out accuracy (≈ +50% time). Default false; `sim run` always does.",
  }),
});

export type ConfigInput = z.input<typeof configSchema>;
type ParsedConfig = z.output<typeof configSchema>;

export interface Config extends Omit<ParsedConfig, 'dbFile' | 'dataDir' | 'modelDir'> {
  /** Absolute paths. */
  dataDir: string;
  modelDir: string;
  dbFile: string;
}

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: { setting: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

type SettingKey = keyof typeof configSchema.shape;

function metaOf(key: SettingKey): SettingMeta {
  const meta = configSchema.shape[key].meta() as { setting?: SettingMeta } | undefined;
  if (!meta?.setting) throw new Error(`config field ${key} has no setting metadata`);
  return meta.setting;
}

const settingKeys = Object.keys(configSchema.shape) as SettingKey[];
/** Settings whose flag may be given bare (`--cookie-secure` means true). */
const BOOLEAN_SETTINGS = new Set<SettingKey>(['cookieSecure']);

const describeSetting = (key: SettingKey): string => {
  const m = metaOf(key);
  return m.flag ? `${m.env} (--${m.flag})` : m.env;
};

/** Splits `--name value`, `--name=value` and bare boolean `--name` flags. */
function parseFlags(argv: readonly string[]): Map<string, string> {
  const byFlag = new Map(settingKeys.flatMap((k) => (metaOf(k).flag ? [[metaOf(k).flag!, k] as const] : [])));
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}": settings are given as --name value (see --help)`);
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const key = byFlag.get(name);
    if (!key) {
      const envOnly = settingKeys.find((k) => metaOf(k).flag === null && metaOf(k).env.toLowerCase().replace(/^attune_/, '').replace(/_/g, '-') === name);
      if (envOnly) throw new ConfigError(`--${name} is not a flag: set ${metaOf(envOnly).env} in the environment instead`);
      throw new ConfigError(`unknown flag --${name} (see --help)`);
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) value = argv[++i]!;
    else if (BOOLEAN_SETTINGS.has(key)) value = 'true';
    else throw new ConfigError(`--${name} needs a value`);
    out.set(key, value);
  }
  return out;
}

/**
 * Builds the typed config from environment variables and command-line flags (flags win). Empty
 * variables count as unset. Throws ConfigError naming every bad variable or flag.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = [], cwd = process.cwd()): Config {
  const flags = parseFlags(argv);
  const raw: Record<string, string | undefined> = {};
  for (const key of settingKeys) {
    const fromFlag = flags.get(key);
    const fromEnv = env[metaOf(key).env];
    const value = fromFlag ?? fromEnv;
    raw[key] = value === undefined || value.trim() === '' ? undefined : value;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const key = i.path[0] as SettingKey | undefined;
      return { setting: key ? describeSetting(key) : '(config)', message: i.message };
    });
    throw new ConfigError(`invalid configuration: ${issues.map((i) => `${i.setting} ${i.message}`).join('; ')}`, issues);
  }
  const c = parsed.data;
  const dataDir = path.resolve(cwd, c.dataDir);
  return {
    ...c,
    dataDir,
    modelDir: path.resolve(cwd, c.modelDir),
    dbFile: c.dbFile ? path.resolve(cwd, c.dbFile) : path.join(dataDir, 'attune.db'),
  };
}

/** The process's own environment and arguments; main.ts calls this. */
export function loadConfigFromProcess(): Config {
  return loadConfig(process.env, process.argv.slice(2));
}

/**
 * The environment for the CLI, which reads a few variables of its own (admin credentials for
 * `--server` and `retrain`); like everything else it gets them from here, not from process.env.
 */
export function processEnvironment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

export const wantsHelp = (argv: readonly string[] = process.argv.slice(2)): boolean => argv.includes('--help') || argv.includes('-h');

/** One line per setting: variable, flag and documentation with the default. */
export function configHelp(): string {
  const lines = ['Attune server settings (environment variable, --flag; flags win):', ''];
  for (const key of settingKeys) {
    const m = metaOf(key);
    lines.push(`  ${m.env}${m.flag ? `, --${m.flag}` : ' (environment only)'}`, `      ${m.doc}`);
  }
  return lines.join('\n') + '\n';
}
