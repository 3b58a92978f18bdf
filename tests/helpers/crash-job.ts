// Child process for the crash-safety test: starts a long retraining job on the given database and
// model, tells the parent once training is under way, and waits to be killed (SIGKILL).
import { pino } from 'pino';
import { openDatabase } from '../../server/db/connection.ts';
import { createRepositories } from '../../server/db/repositories.ts';
import { inProcessRunner } from '../../server/personalize/jobs.ts';
import { PersonalizationService } from '../../server/personalize/personalization-service.ts';
import { pdpoConfigSchema } from '../../server/personalize/pdpo.ts';

const [dbFile, modelDir] = process.argv.slice(2);
if (!dbFile || !modelDir) throw new Error('usage: crash-job.ts DB_FILE MODEL_DIR');
const db = openDatabase(dbFile);
const svc = new PersonalizationService({
  db, repos: createRepositories(db), logger: pino({ level: 'silent' }), modelDir, modelFingerprint: 'tiny', runner: inProcessRunner,
  settings: {
    pdpo: pdpoConfigSchema.parse({ tokens: 2, epochs: 200, batchPairs: 2, maxResponseTokens: 16 }),
    gateTolerance: 0.02, schedule: { cron: 'off', minNewPairs: 1, perUserMinPairs: 1, enabled: false }, retrainCheckSeconds: 3600, trainerThreads: 1, trainBaseline: false,
  },
});
svc.start({ schedule: false });
svc.on('progress', (p: { step: number }) => {
  if (p.step === 2) process.send?.('training');
});
svc.requestJob({ trigger: 'admin' });
