// `npm run bench -- personalize [--json] [--pairs-per-user 150] [--streams 8] [--think-ms 1000] [--idle-seconds 30] [--trainer-threads N]`:
// P-DPO retraining on the sandbox's six Personalized-Soups users (900 pairs by default) in the
// server's worker thread, while chat streams on the same engine. Figures:
//   - retraining wall time for the pairs, against the 10-minute target;
//   - chat time to first token p50/p95 idle and while the job trains, and their ratio (target ≤ 2×);
//   - the new version's held-out reward accuracy.
// Pairs are built from the corpus: two renderings of one prompt in different styles, judged by the
// simulated users (the same judge as `sim run`), so the bench needs no sampling phase.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../server/config.ts';
import { openDatabase } from '../server/db/connection.ts';
import { runMigrations } from '../server/db/migrate.ts';
import { createRepositories } from '../server/db/repositories.ts';
import { Engine } from '../server/lm/engine.ts';
import type { ChatMessage } from '../server/lm/tokenizer.ts';
import { PersonalizationService } from '../server/personalize/personalization-service.ts';
import { renderPromptResponse, samplePrompt, sampleStyle } from '../sandbox/corpus.ts';
import { Rng } from '../server/lm/rng.ts';
import { SimulatedUser, SOUPS_PROFILES } from '../sandbox/users.ts';

const fig = (value: number, unit: string, limit: number | null, note?: string) => ({ value, unit, limit, ratio: limit === null ? null : value / limit, ...(note ? { note } : {}) });

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

export async function runPersonalizeBench(args: string[]): Promise<unknown> {
  const { values } = parseArgs({
    args,
    options: {
      json: { type: 'boolean' }, model: { type: 'string' }, 'pairs-per-user': { type: 'string' }, streams: { type: 'string' }, 'idle-seconds': { type: 'string' }, 'think-ms': { type: 'string' }, 'trainer-threads': { type: 'string' },
    },
  });
  const modelDir = path.resolve(values.model ?? 'models/default');
  const perUser = Number(values['pairs-per-user'] ?? 150);
  const streams = Number(values.streams ?? 8);
  const idleSeconds = Number(values['idle-seconds'] ?? 30);
  // Each simulated chat user reads the answer and types for a while before the next message.
  const thinkMs = Number(values['think-ms'] ?? 1000);
  for (const [name, v] of [['--pairs-per-user', perUser], ['--streams', streams], ['--idle-seconds', idleSeconds]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  }
  const log = (s: string) => process.stderr.write(`[bench personalize] ${s}\n`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-bench-pers-'));
  const config = loadConfig(
    { ATTUNE_DATA_DIR: dir, ATTUNE_MODEL_DIR: modelDir, ATTUNE_RETRAIN_CRON: 'off', ...(values['trainer-threads'] ? { ATTUNE_TRAINER_THREADS: values['trainer-threads'] } : {}) },
    [],
    process.cwd(),
  );
  const db = openDatabase(config.dbFile);
  runMigrations(db);
  const repos = createRepositories(db);

  // Users and their pairs.
  const rng = new Rng('bench-personalize');
  let t = 1;
  for (const profile of SOUPS_PROFILES) {
    const userId = randomUUID();
    repos.users.insert({ id: userId, username: `sim_${profile.name}`, passwordHash: 'x', role: 'user', disabled: false, createdAt: 0 });
    const sim = new SimulatedUser(profile, { seed: 1 });
    let n = 0;
    while (n < perUser) {
      const prompt = samplePrompt(rng.fork(`p${t}`), { split: 'train' });
      const a = renderPromptResponse(prompt, sampleStyle(rng.fork(`a${t}`)), rng.fork(`ra${t}`));
      const b = renderPromptResponse(prompt, sampleStyle(rng.fork(`b${t}`)), rng.fork(`rb${t}`));
      t++;
      const choice = sim.compare(a, b);
      if (choice !== 'A' && choice !== 'B') continue;
      repos.preferencePairs.insert({
        id: randomUUID(), userId, prompt: prompt.messages as ChatMessage[] as never, chosen: choice === 'A' ? a : b, rejected: choice === 'A' ? b : a,
        source: 'ab', chosenMessage: null, rejectedMessage: null, createdAt: t,
      });
      n++;
    }
  }
  const totalPairs = perUser * SOUPS_PROFILES.length;
  log(`${totalPairs} pairs from ${SOUPS_PROFILES.length} simulated users`);

  const engine = await Engine.load(modelDir, { threads: config.engineThreads, maxBatch: config.engineMaxBatch });
  const svc = new PersonalizationService({ db, repos, logger: pino({ level: 'silent' }), modelDir, modelFingerprint: engine.runtime.files.id, settings: PersonalizationService.settingsFromConfig(config) });
  svc.start({ schedule: false });

  const prompts = Array.from({ length: 64 }, (_, i) => samplePrompt(new Rng(`bench-chat:${i}`), { split: 'heldout' }).messages as ChatMessage[]);
  /** `streams` chat users in a loop until `until()`; returns each reply's time to first token. */
  const chatLoad = async (until: () => boolean): Promise<number[]> => {
    const ttft: number[] = [];
    let k = 0;
    await Promise.all(Array.from({ length: streams }, async () => {
      while (!until()) {
        const r = await engine.generateText({ messages: prompts[k++ % prompts.length]!, maxNewTokens: 64, sampling: { temperature: 0.7, topK: 0, topP: 0.95, repetitionPenalty: 1, seed: k } });
        if (r.timeToFirstTokenMs !== null) ttft.push(r.timeToFirstTokenMs);
        if (thinkMs > 0) await new Promise((res) => setTimeout(res, thinkMs * (0.5 + Math.random())));
      }
    }));
    return ttft;
  };

  log(`chat idle: ${streams} streams for ${idleSeconds} s`);
  const idleEnd = performance.now() + idleSeconds * 1000;
  const idle = await chatLoad(() => performance.now() > idleEnd);

  log('retraining (worker thread) while chat streams');
  const t0 = performance.now();
  const job = svc.requestJob({ trigger: 'admin' });
  let lastLog = 0;
  svc.on('progress', (p: { step: number; totalSteps: number; loss: number | null; etaSeconds: number | null }) => {
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now();
      log(`  step ${p.step}/${p.totalSteps} loss ${p.loss?.toFixed(3)} eta ${p.etaSeconds?.toFixed(0)} s`);
    }
  });
  let trainingDone = false;
  const finished = svc.idle().then(() => {
    trainingDone = true;
  });
  const during = await chatLoad(() => trainingDone);
  await finished;
  const retrainSeconds = (performance.now() - t0) / 1000;
  const stored = repos.userModels.findJob(job.id)!;
  const version = stored.versionId ? repos.userModels.findVersion(stored.versionId, { blob: false }) : undefined;
  await svc.close();
  await engine.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const idleP95 = quantile(idle, 0.95);
  return {
    machine: { cores: os.availableParallelism(), trainerThreads: config.trainerThreads, chatStreams: streams, thinkMs },
    pairs: totalPairs,
    job: { status: stored.status, error: stored.error, version: version?.status ?? null, reason: version?.reason ?? null },
    retrain: fig(retrainSeconds, 's', 600, `P-DPO on ${totalPairs} pairs, ${config.pdpoEpochs} epochs, T_u ${config.userModelTokens}; target ≤ 600 s`),
    heldoutAccuracy: fig(Number(version?.metrics.heldoutAccuracy ?? NaN), 'share', 0.85, 'mean over users of held-out reward accuracy; target ≥ 0.85'),
    chatIdle: { requests: idle.length, ttftP50: fig(quantile(idle, 0.5), 'ms', null), ttftP95: fig(idleP95, 'ms', null) },
    chatWhileTraining: {
      requests: during.length,
      ttftP50: fig(quantile(during, 0.5), 'ms', null),
      ttftP95: fig(quantile(during, 0.95), 'ms', 2 * idleP95, 'limit: 2 × the idle p95'),
    },
  };
}
