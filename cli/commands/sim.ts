// `npm run --silent cli -- sim run|cold-start …`: the simulated-user evaluation from the command
// line. `sim run` runs in this process on a model directory, or with --server through a running
// server's public API (../sim-server.ts). Progress bars go to stderr; one JSON object to stdout.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { Engine } from '../../server/lm/engine.ts';
import { Rng } from '../../server/lm/rng.ts';
import type { ChatMessage } from '../../server/lm/tokenizer.ts';
import { openModelDir } from '../../server/lm/weights.ts';
import {
  type DpoStats, evaluatePdpo, type PdpoConfig, pdpoConfigSchema, referenceLogps, type StepLog, type TokenizedPair, tokenizePair, trainPdpo,
} from '../../server/personalize/pdpo.ts';
import { readTokenEmbedding, UserModel } from '../../server/personalize/user-model.ts';
import { barChartSvg, lineChartSvg } from '../../sandbox/plot.ts';
import { collectPairs, mean, runSimInProcess, type SimProgress, type SimResult } from '../../sandbox/sim.ts';
import { parseProfiles, ProfileError, type UserProfile } from '../../sandbox/users.ts';
import { CliError, type CliEnv, type Flags, numberFlag, parse, required, stringFlag } from '../flags.ts';
import { fmt, PhaseBars } from '../progress.ts';
import { runSimThroughServer, type ServerSimResult } from '../sim-server.ts';

/** The `--help` lines of the sim group. */
export const SIM_USAGE = [
  'sim run --profiles FILE --pairs-per-user N --seed S [--model DIR] [--eval-prompts N] [--out DIR] [TRAINING]',
  'sim run --profiles FILE --pairs-per-user N --seed S --server URL [--admin-user U] [--admin-password P] [--concurrency N] [--eval-prompts N] [--out DIR]',
  'sim cold-start --profiles FILE --seed S [--model DIR] [--user NAME|all] [--heldout-pairs N] [--others-pairs N] [--steps 10,25,50,100] [--out DIR] [TRAINING]',
  '  TRAINING: [--epochs N] [--lr X] [--beta X] [--alpha X] [--tokens N] [--heldout-fraction X]',
];

export const DEFAULT_MODEL_DIR = 'models/default';
export const COLD_START_STEPS = [10, 25, 50, 100] as const;

/** The profiles of `--profiles FILE`; any problem is a CliError naming the flag. */
export function readProfilesFlag(file: string): UserProfile[] {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`--profiles ${file}: ${code === 'ENOENT' ? 'file not found' : code ? `cannot read it (${code})` : `not valid JSON (${(e as Error).message})`}`);
  }
  let profiles: UserProfile[];
  try {
    profiles = parseProfiles(raw);
  } catch (e) {
    if (e instanceof ProfileError) throw new CliError(`--profiles ${file}: ${e.message}`);
    throw e;
  }
  if (profiles.length === 0) throw new CliError(`--profiles ${file}: the array lists no profiles`);
  const seen = new Set<string>();
  for (const p of profiles) {
    if (seen.has(p.name)) throw new CliError(`--profiles ${file}: the name "${p.name}" appears twice (names identify the simulated users)`);
    seen.add(p.name);
  }
  return profiles;
}

function configFrom(f: Flags, seed: number): PdpoConfig {
  const overrides = {
    epochs: numberFlag(f, 'epochs', z.number().int().min(1).max(1000)),
    lr: numberFlag(f, 'lr', z.number().positive().max(10)),
    beta: numberFlag(f, 'beta', z.number().positive().max(10)),
    alpha: numberFlag(f, 'alpha', z.number().min(0).max(1)),
    tokens: numberFlag(f, 'tokens', z.number().int().min(1).max(64)),
    heldoutFraction: numberFlag(f, 'heldout-fraction', z.number().min(0).max(0.9)),
  };
  return pdpoConfigSchema.parse({ seed, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) });
}

const CONFIG_FLAGS = { epochs: { type: 'string' }, lr: { type: 'string' }, beta: { type: 'string' }, alpha: { type: 'string' }, tokens: { type: 'string' }, 'heldout-fraction': { type: 'string' } } as const;

async function loadModel(dir: string): Promise<{ engine: Engine; embedding: Float32Array }> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CliError(`--model ${dir}: model directory not found`);
  const engine = await Engine.load(dir);
  const files = openModelDir(dir);
  try {
    return { engine, embedding: readTokenEmbedding(files) };
  } finally {
    files.weights.close();
  }
}

/**
 * --out DIR, made (and checked writable) before any work starts: a run takes minutes to an hour, and
 * a directory it cannot write would otherwise fail it at the end and lose the printed result.
 */
function outDirFlag(f: Flags): string | null {
  if (typeof f.out !== 'string' || f.out === '') return null;
  try {
    fs.mkdirSync(f.out, { recursive: true });
    fs.accessSync(f.out, fs.constants.W_OK);
  } catch (e) {
    throw new CliError(`--out ${f.out}: cannot write figures there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return f.out;
}

/** Progress callbacks of runSimInProcess feeding the bars. */
function simBars(bars: PhaseBars) {
  return {
    onProgress: (p: SimProgress) => bars.update(p.phase, p.done, p.total, p.phase === 'evaluate' ? { user: p.detail ?? '-' } : {}),
    onTrain: (method: 'pdpo' | 'dpo', p: { step: number; totalSteps: number; log: StepLog }) =>
      bars.update(`train-${method}`, p.step, p.totalSteps, { loss: fmt(p.log.loss), acc: fmt(p.log['rewards/accuracies'], 2) }),
  };
}

/** The figures of a run: loss curves of both trainings, per-user accuracy and style-match bars. */
export function writeSimFigures(dir: string, r: { users: SimResult['users']; history?: { pdpo: unknown[]; dpo: unknown[] } | undefined }): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  const write = (name: string, svg: string) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, svg);
    written.push(f);
  };
  if (r.history) {
    const points = (h: unknown[]): [number, number][] => (h as StepLog[]).map((s) => [s.step, s.loss]);
    write('sim-loss.svg', lineChartSvg({
      title: 'Training loss per step: P-DPO vs vanilla DPO (same pairs)', xLabel: 'step', yLabel: 'loss',
      // A server run logs the P-DPO job's steps only (the baseline's are not kept).
      series: [{ name: 'P-DPO (α-mix)', points: points(r.history.pdpo) }, { name: 'DPO (one prompt)', points: points(r.history.dpo) }].filter((x) => x.points.length > 0),
    }));
  }
  const names = r.users.map((u) => u.name);
  write('sim-heldout-accuracy.svg', barChartSvg({
    title: 'Held-out reward accuracy per user', yLabel: 'accuracy', yMax: 1, seriesNames: ['P-DPO', 'DPO'],
    bars: r.users.map((u, i) => ({ label: names[i]!, values: [u.heldout_accuracy.pdpo ?? 0, u.heldout_accuracy.dpo ?? 0] })),
  }));
  write('sim-style-match.svg', barChartSvg({
    title: 'Style-match of fresh generations per user', yLabel: 'share on the preferred pole', yMax: 1, seriesNames: ['personalized e_i', 'generic e_0', 'base (no prefix)'],
    bars: r.users.map((u, i) => ({ label: names[i]!, values: [u.style_match.personalized, u.style_match.generic, u.style_match.base] })),
  }));
  return written;
}

async function simRun(argv: string[], env: CliEnv): Promise<unknown> {
  const f = parse(argv, {
    profiles: { type: 'string' }, 'pairs-per-user': { type: 'string' }, seed: { type: 'string' }, server: { type: 'string' }, model: { type: 'string' },
    'eval-prompts': { type: 'string' }, out: { type: 'string' }, 'admin-user': { type: 'string' }, 'admin-password': { type: 'string' },
    concurrency: { type: 'string' }, ...CONFIG_FLAGS,
  });
  const profiles = readProfilesFlag(required(f, 'profiles'));
  const pairsPerUser = numberFlag(f, 'pairs-per-user', z.number().int().min(1).max(100_000));
  if (pairsPerUser === undefined) throw new CliError('--pairs-per-user is required');
  const seed = numberFlag(f, 'seed', z.number().int().min(0).max(0xffff_ffff));
  if (seed === undefined) throw new CliError('--seed is required');
  const evalPrompts = numberFlag(f, 'eval-prompts', z.number().int().min(1).max(10_000)) ?? 48;
  const concurrency = numberFlag(f, 'concurrency', z.number().int().min(1).max(64));
  const out = outDirFlag(f);
  const bars = new PhaseBars();

  if (typeof f.server === 'string') {
    if (f.model !== undefined) throw new CliError('--model cannot be combined with --server: the server answers with its own model');
    for (const k of Object.keys(CONFIG_FLAGS)) if (f[k] !== undefined) throw new CliError(`--${k} cannot be combined with --server: the server trains with its own configuration (ATTUNE_PDPO_* settings)`);
    const adminPassword = stringFlag(f, 'admin-password') ?? env.ATTUNE_ADMIN_PASSWORD;
    if (!adminPassword) throw new CliError('--admin-password (or ATTUNE_ADMIN_PASSWORD) is required with --server: the sim starts the retraining as an admin');
    const r: ServerSimResult = await runSimThroughServer({
      url: f.server, adminUser: stringFlag(f, 'admin-user') ?? env.ATTUNE_ADMIN_USER ?? 'admin', adminPassword,
      profiles, pairsPerUser, seed, evalPrompts, concurrency: concurrency ?? 2,
      onProgress: (phase, done, total, payload) => bars.update(phase, done, total, payload),
      log: (line) => {
        bars.stop();
        process.stderr.write(`${line}\n`);
      },
    }).finally(() => bars.stop());
    if (out) r.figures = writeSimFigures(out, { users: r.users, history: r.history });
    const { history: _history, ...printed } = r;
    return printed;
  }

  for (const k of ['concurrency', 'admin-user', 'admin-password']) if (f[k] !== undefined) throw new CliError(`--${k} only applies with --server`);
  const cfg = configFrom(f, seed);
  const modelDir = typeof f.model === 'string' && f.model !== '' ? f.model : DEFAULT_MODEL_DIR;
  const { engine, embedding } = await loadModel(modelDir);
  try {
    const t0 = performance.now();
    const r = await runSimInProcess({
      engine, runtime: engine.runtime, embedding, profiles, pairsPerUser, seed, config: cfg, evalPrompts, ...simBars(bars),
    }).finally(() => bars.stop());
    const { history, ...result } = r;
    const figures = out ? writeSimFigures(out, { users: r.users, history }) : undefined;
    if (out) {
      // The per-step curves, compactly (the full step logs run to megabytes).
      const compact = (h: unknown[] | undefined) => (h as StepLog[] | undefined)?.map((s) => [s.step, s.loss, s['rewards/accuracies']]);
      const curves = { columns: ['step', 'loss', 'accuracy'], pdpo: compact(history?.pdpo), dpo: compact(history?.dpo) };
      fs.writeFileSync(path.join(out, 'sim-result.json'), `${JSON.stringify({ ...result, curves }, null, 1)}\n`);
    }
    return { ...result, mode: 'in-process', model: modelDir, seed, pairs_per_user: pairsPerUser, eval_prompts: evalPrompts, total_seconds: (performance.now() - t0) / 1000, ...(figures ? { figures } : {}) };
  } finally {
    await engine.close();
  }
}

/**
 * Held-out accuracy of a new user after k of their pairs: the first profile is the new user, the
 * others are the community it joins. Every k trains P-DPO from the same initialisation on the
 * others' pairs plus the new user's first k, and evaluates on the new user's own held-out pairs.
 */
async function simColdStart(argv: string[]): Promise<unknown> {
  const f = parse(argv, {
    profiles: { type: 'string' }, seed: { type: 'string' }, model: { type: 'string' }, user: { type: 'string' },
    'heldout-pairs': { type: 'string' }, 'others-pairs': { type: 'string' }, steps: { type: 'string' }, out: { type: 'string' }, ...CONFIG_FLAGS,
  });
  const out = outDirFlag(f);
  const profiles = readProfilesFlag(required(f, 'profiles'));
  const seed = numberFlag(f, 'seed', z.number().int().min(0).max(0xffff_ffff));
  if (seed === undefined) throw new CliError('--seed is required');
  const userName = typeof f.user === 'string' ? f.user : profiles[0]!.name;
  const everyone = userName === 'all';
  const newUsers = everyone ? profiles : profiles.filter((p) => p.name === userName);
  if (!newUsers.length) throw new CliError(`--user "${userName}" is not a profile name in --profiles (${profiles.map((p) => p.name).join(', ')}), nor "all"`);
  const heldoutPairs = numberFlag(f, 'heldout-pairs', z.number().int().min(1).max(10_000)) ?? 40;
  const othersPairs = numberFlag(f, 'others-pairs', z.number().int().min(0).max(10_000)) ?? 40;
  let steps: number[] = [...COLD_START_STEPS];
  if (typeof f.steps === 'string') {
    const parts = f.steps.split(',').map((s) => s.trim());
    steps = parts.map(Number);
    if (!steps.length || steps.some((k, i) => parts[i] === '' || !Number.isInteger(k) || k < 1)) throw new CliError(`--steps "${f.steps}": expected a comma-separated list of positive pair counts`);
    steps = [...new Set(steps)].sort((a, b) => a - b);
  }
  const cfg = configFrom(f, seed);
  const modelDir = typeof f.model === 'string' && f.model !== '' ? f.model : DEFAULT_MODEL_DIR;
  const { engine, embedding } = await loadModel(modelDir);
  const bars = new PhaseBars();
  try {
    const runs: ColdStartRun[] = [];
    for (const newUser of newUsers) {
      if (everyone) process.stderr.write(`new user: ${newUser.name}\n`);
      runs.push(await coldStartCurve(engine, embedding, newUser, profiles.filter((p) => p !== newUser), { steps, heldoutPairs, othersPairs, seed, cfg, bars }));
    }
    const common = { config: cfg, model: modelDir, seed };
    const figures = (mean: ColdStartRun['curve'] | null) => (out ? { figures: [writeColdStartFigure(out, runs, mean)] } : {});
    if (!everyone) return { ...runs[0]!, ...common, ...figures(null) };
    // The mean over new users at each pair count: one user's curve is noisy with a few dozen held-out pairs.
    const curve = steps.map((k, i) => ({
      pairs: k,
      heldout_accuracy: mean(runs.map((r) => r.curve[i]!.heldout_accuracy)),
      generic_accuracy: mean(runs.map((r) => r.curve[i]!.generic_accuracy)),
      train_seconds: runs.reduce((a, r) => a + r.curve[i]!.train_seconds, 0),
    }));
    return { curve, users: runs, ...common, ...figures(curve) };
  } finally {
    bars.stop();
    await engine.close();
  }
}

/** cold-start.svg: held-out accuracy over the new user's pair counts, per user, their mean, and e₀'s. `dir` exists (outDirFlag made it). */
function writeColdStartFigure(dir: string, runs: ColdStartRun[], mean: ColdStartRun['curve'] | null): string {
  const points = (c: ColdStartRun['curve'], key: 'heldout_accuracy' | 'generic_accuracy'): [number, number][] =>
    c.filter((p) => p[key] !== null).map((p) => [p.pairs, p[key]!]);
  const series = [
    ...(mean ? [{ name: 'mean e_i', points: points(mean, 'heldout_accuracy') }, { name: 'mean e_0', points: points(mean, 'generic_accuracy') }] : []),
    ...runs.map((r) => ({ name: `${r.user} e_i`, points: points(r.curve, 'heldout_accuracy') })),
    ...(mean ? [] : runs.map((r) => ({ name: `${r.user} e_0`, points: points(r.curve, 'generic_accuracy') }))),
  ];
  const file = path.join(dir, 'cold-start.svg');
  fs.writeFileSync(file, lineChartSvg({ title: 'Cold start: a new user\'s held-out accuracy after k of their pairs', xLabel: 'pairs from the new user', yLabel: 'held-out reward accuracy', series }));
  return file;
}

interface ColdStartRun {
  user: string;
  curve: { pairs: number; heldout_accuracy: number | null; generic_accuracy: number | null; train_seconds: number }[];
  heldout_pairs: number;
  others: { name: string; pairs: number }[];
}

/** One new user's curve: trained with the others' pairs plus their first k pairs, for each k in steps. */
async function coldStartCurve(
  engine: Engine, embedding: Float32Array, newUser: UserProfile, others: UserProfile[],
  o: { steps: number[]; heldoutPairs: number; othersPairs: number; seed: number; cfg: ReturnType<typeof configFrom>; bars: PhaseBars },
): Promise<ColdStartRun> {
  const { steps, heldoutPairs, othersPairs, seed, cfg, bars } = o;
  const maxK = steps.at(-1)!;
  const rt = engine.runtime;
  const onProgress = (p: SimProgress) => bars.update(p.phase, p.done, p.total);
  const [mine] = await collectPairs(engine, [{ profile: newUser, userId: 'new', prefix: null }], maxK + heldoutPairs, seed, { onProgress });
  const community = others.length && othersPairs > 0
    ? await collectPairs(engine, others.map((p, i) => ({ profile: p, userId: `u${i + 1}`, prefix: null })), othersPairs, seed + 7777, { onProgress })
    : [];
  const tok = (p: { id: string; userId: string; prompt: ChatMessage[]; chosen: string; rejected: string }) => tokenizePair(engine.tokenizer, p, cfg, rt.maxContext);
  const mineT = mine!.pairs.map(tok);
  const othersT = community.flatMap((c) => c.pairs.map(tok));
  await referenceLogps(rt, [...mineT, ...othersT], 16, (d, t) => bars.update('reference', d, t));
  const train = mineT.slice(0, maxK);
  const heldout = mineT.slice(maxK);
  const init = UserModel.initFromVocabulary(
    { kind: cfg.userModel, tokens: cfg.tokens, hidden: rt.config.hidden, ...(cfg.userModel === 'cluster' ? { clusters: cfg.clusters } : {}) },
    embedding, rt.config.vocabSize, new Rng(cfg.seed),
  );
  const acc = (s: Record<string, DpoStats>) => s.new?.['rewards/accuracies'] ?? null;
  const curve: ColdStartRun['curve'] = [];
  for (const k of steps) {
    const pairs: TokenizedPair[] = [...othersT, ...train.slice(0, k)];
    const t0 = performance.now();
    const trained = await trainPdpo({
      runtime: rt, pairs, init, config: cfg,
      onProgress: (p) => bars.update(`train k=${k}`, p.step, p.totalSteps, { loss: fmt(p.log.loss), acc: fmt(p.log['rewards/accuracies'], 2) }),
    });
    const seconds = (performance.now() - t0) / 1000;
    bars.stop();
    curve.push({
      pairs: k,
      heldout_accuracy: acc(await evaluatePdpo(rt, trained.model, heldout, cfg)),
      generic_accuracy: acc(await evaluatePdpo(rt, trained.model, heldout, cfg, { generic: true })),
      train_seconds: seconds,
    });
    process.stderr.write(`  k=${k}: held-out accuracy ${fmt(curve.at(-1)!.heldout_accuracy)} (e_0: ${fmt(curve.at(-1)!.generic_accuracy)})\n`);
  }
  return { user: newUser.name, curve, heldout_pairs: heldout.length, others: community.map((c) => ({ name: c.profile.name, pairs: c.pairs.length })) };
}

export async function sim(cmd: string | undefined, argv: string[], env: CliEnv): Promise<unknown> {
  switch (cmd) {
    case 'run':
      return simRun(argv, env);
    case 'cold-start':
      return simColdStart(argv);
    default:
      throw new CliError(`unknown command "sim ${cmd ?? ''}": use sim run or sim cold-start`);
  }
}
