// A retraining job's life without a language model (the runner is a stand-in): its rows, its events,
// the gate's decision recorded and published, and how it ends when there is nothing to train on,
// when it is cancelled, when its candidate does not load, and when a listener throws.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TrainingJobRecord } from '../../../server/db/user-models.ts';
import { Conflict } from '../../../server/errors.ts';
import { JobCancelled, type JobRunner } from '../../../server/personalize/jobs.ts';
import { PersonalizationService } from '../../../server/personalize/personalization-service.ts';
import type { TrainJobSpec } from '../../../server/personalize/trainer.ts';
import { addPairs, addUser, capturingLogger, type LogLine, settings, type TestDb, testDb, trainResult, userModelBlob } from '../../helpers/personalization.ts';

describe('retraining jobs', () => {
  let t: TestDb;
  let alice: string;
  let logs: LogLine[];
  let svc: PersonalizationService;
  const specs: TrainJobSpec[] = [];

  const start = (runner: JobRunner) => {
    const captured = capturingLogger();
    logs = captured.logs;
    svc = new PersonalizationService({ db: t.db, repos: t.repos, logger: captured.logger, modelDir: 'unused', modelFingerprint: 'fp', settings: settings(), runner });
    svc.start({ schedule: false });
    return svc;
  };

  beforeEach(() => {
    t = testDb();
    alice = addUser(t, 'alice');
    specs.length = 0;
  });
  afterEach(async () => {
    await svc?.close();
    t.close();
  });

  it('with no pairs the job fails as an expected outcome: a warning, not an error, and nothing serves', async () => {
    const s = start(async () => assert.fail('nothing to train: the runner is never called'));
    const job = s.requestJob({ trigger: 'admin' });
    await s.idle();
    const stored = t.repos.userModels.findJob(job.id)!;
    assert.equal(stored.status, 'failed');
    assert.equal(stored.error, 'no preference pairs to train on yet');
    assert.equal(t.repos.userModels.findVersion(job.versionId!)!.status, 'failed');
    assert.equal(s.currentVersion(), null);
    const line = logs.find((l) => l.jobId === job.id && /retraining job failed/.test(l.msg));
    assert.ok(line, 'the outcome is logged');
    assert.equal(line.level, 40, 'at warn');
    assert.ok(!logs.some((l) => l.level >= 50), `no error lines: ${JSON.stringify(logs.filter((l) => l.level >= 50))}`);
  });

  it('trains the pairs, publishes the first version, and tells listeners each step, the job and the publish', async () => {
    addPairs(t, alice, 8, 1000);
    const s = start(async (spec, emit) => {
      specs.push(spec);
      // As from a worker: reports arrive after the job has started.
      await new Promise((resolve) => setImmediate(resolve));
      emit({ type: 'progress', progress: { step: 1, totalSteps: 2, epoch: 0, elapsedSeconds: 1, etaSeconds: 1, log: { step: 1, epoch: 0, lr: 0.1, gradNorm: 1, pairs: 2, loss: 0.6, 'rewards/chosen': 0, 'rewards/rejected': 0, 'rewards/margins': 0.2, 'rewards/accuracies': 0.5, 'logps/chosen': -1, 'logps/rejected': -1 } } });
      return trainResult(userModelBlob([alice]), 0.75);
    });
    const heard: string[] = [];
    s.on('progress', (p) => heard.push(`progress ${p.jobId} ${p.step}/${p.totalSteps} ${p.point.loss}`));
    s.on('job', (j) => heard.push(`job ${j.status}`));
    s.on('published', (v) => heard.push(`published ${v?.id}`));
    const job = s.requestJob({ trigger: 'admin', requestedBy: alice });
    await s.idle();
    const v = s.currentVersion()!;
    assert.equal(v.id, job.versionId);
    assert.deepEqual(heard, ['job running', `progress ${job.id} 1/2 0.6`, `published ${v.id}`, 'job succeeded']);
    assert.equal(s.prefixFor(alice).source, 'personal');
    assert.equal(specs[0]!.pairs.length, 8);
    assert.equal(specs[0]!.init, null, 'the first job starts from the vocabulary');
    assert.equal(v.config.modelId, 'fp', 'the version records the base model it was trained on');
    assert.equal(v.metrics.heldoutAccuracy, 0.75);
    assert.equal(s.jobDetails(job.id).history.length, 1);
  });

  it('a candidate the gate refuses is kept unpublished with the reason; the job still succeeds', async () => {
    addPairs(t, alice, 8, 1000);
    const results = [trainResult(userModelBlob([alice]), 0.9), trainResult(userModelBlob([alice]), 0.5, 0.9)];
    const s = start(async (spec) => {
      specs.push(spec);
      return results.shift()!;
    });
    s.requestJob({ trigger: 'admin' });
    await s.idle();
    const first = s.currentVersion()!.id;
    const second = s.requestJob({ trigger: 'admin' });
    await s.idle();
    assert.ok(specs[1]!.init, 'the second job starts from the published version');
    const v = t.repos.userModels.findVersion(second.versionId!)!;
    assert.equal(v.status, 'rejected');
    assert.match(v.reason!, /below the current version's 0\.900/);
    assert.equal(s.currentVersion()!.id, first);
    assert.equal(t.repos.userModels.findJob(second.id)!.status, 'succeeded');
  });

  it('one job at a time; a cancel ends it as cancelled and nothing is published', async () => {
    addPairs(t, alice, 8, 1000);
    const s = start((_spec, _emit, signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new JobCancelled()))));
    const job = s.requestJob({ trigger: 'admin' });
    assert.throws(() => s.requestJob({ trigger: 'admin' }), (e: unknown) => e instanceof Conflict && e.code === 'job_running');
    s.cancelJob(job.id);
    await s.idle();
    const stored = t.repos.userModels.findJob(job.id)!;
    assert.equal(stored.status, 'cancelled');
    assert.equal(stored.error, 'cancelled by an admin');
    assert.equal(s.currentVersion(), null);
    assert.throws(() => s.cancelJob(job.id), (e: unknown) => e instanceof Conflict && e.code === 'job_not_running');
  });

  it('a candidate whose blob does not load fails the job before anything is published', async () => {
    addPairs(t, alice, 8, 1000);
    const s = start(async () => trainResult(Uint8Array.from([1, 2]), 0.9));
    const job = s.requestJob({ trigger: 'admin' });
    await s.idle();
    assert.equal(t.repos.userModels.findJob(job.id)!.status, 'failed');
    assert.equal(t.repos.userModels.findVersion(job.versionId!)!.blob, null);
    assert.equal(s.currentVersion(), null);
  });

  it('a listener that throws is logged, and the job and the publish go on', async () => {
    addPairs(t, alice, 8, 1000);
    const s = start(async () => trainResult(userModelBlob([alice]), 0.9));
    const jobs: TrainingJobRecord[] = [];
    s.on('job', () => {
      throw new Error('listener broke');
    });
    s.on('job', (j) => jobs.push(j));
    const job = s.requestJob({ trigger: 'admin' });
    await s.idle();
    assert.equal(t.repos.userModels.findJob(job.id)!.status, 'succeeded');
    assert.ok(s.currentVersion());
    assert.ok(logs.some((l) => l.level >= 50 && /'job' listener failed/.test(l.msg)));
  });
});
