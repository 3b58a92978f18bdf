// The training service, as the HTTP routes and the admin sockets use it (no language model: the
// runner is a stand-in): an admin's job, a cancel that answers once the job's end is recorded,
// versions, the schedule, a user's view and reset, and the events it relays.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { JobCancelled, type JobRunner } from '../../../server/personalize/jobs.ts';
import { PersonalizationService } from '../../../server/personalize/personalization-service.ts';
import { createTrainingService, type TrainingService } from '../../../server/services/training.ts';
import { addPairs, addUser, settings, type TestDb, testDb, trainResult, userModelBlob } from '../../helpers/personalization.ts';

describe('the training service', () => {
  let t: TestDb;
  let alice: string;
  let admin: string;
  let personalization: PersonalizationService;
  let training: TrainingService;
  let release: (() => void) | null;

  /** Trains until released (or cancelled), then returns a candidate that personalizes alice. */
  const runner: JobRunner = (_spec, _emit, signal) =>
    new Promise((resolve, reject) => {
      release = () => resolve(trainResult(userModelBlob([alice]), 0.8));
      signal.addEventListener('abort', () => reject(new JobCancelled()));
    });

  beforeEach(() => {
    t = testDb();
    alice = addUser(t, 'alice');
    admin = addUser(t, 'admin');
    addPairs(t, alice, 8, 1000);
    release = null;
    personalization = new PersonalizationService({ db: t.db, repos: t.repos, logger: pino({ level: 'silent' }), modelDir: 'unused', modelFingerprint: 'fp', settings: settings(), runner });
    personalization.start({ schedule: false });
    training = createTrainingService(personalization);
  });
  afterEach(async () => {
    await personalization.close();
    t.close();
  });

  it("starts an admin's job, relays its events, and publishes: the user's view follows", async () => {
    const events: string[] = [];
    training.on('job', (j) => events.push(`job ${j.status}`));
    training.on('published', (v) => events.push(`published ${v?.id === undefined ? 'none' : 'a version'}`));
    const job = training.startJob({ userIds: null, requestedBy: admin });
    assert.equal(job.trigger, 'admin');
    assert.equal(job.requestedBy, admin);
    assert.equal(training.listJobs(10)[0]!.id, job.id);
    release!();
    await personalization.idle();
    assert.deepEqual(events, ['job running', 'published a version', 'job succeeded']);
    const [version] = training.listVersions();
    assert.equal(version!.current, true);
    const mine = training.personalizationOf(alice);
    assert.equal(mine.personalized, true);
    assert.equal(mine.pairs, 8);
    assert.equal(mine.version!.id, version!.id);
    training.resetPersonalization(alice);
    assert.equal(training.personalizationOf(alice).personalized, false);
  });

  it('a cancel answers with the job once its end is recorded', async () => {
    const job = training.startJob({ userIds: [alice], requestedBy: admin });
    const cancelled = await training.cancelJob(job.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.deepEqual(cancelled.scope, [alice]);
    assert.equal(training.jobDetails(job.id).job.status, 'cancelled');
    await assert.rejects(training.cancelJob(job.id), { status: 409, code: 'job_not_running' });
    assert.throws(() => training.jobDetails('no-such-job'), { status: 404 });
  });

  it('publishes an earlier version by hand (rollback), and keeps the schedule an admin sets', async () => {
    training.startJob({ userIds: null, requestedBy: admin });
    release!();
    await personalization.idle();
    const [v] = training.listVersions();
    assert.equal(training.publishVersion(v!.id).status, 'published');
    assert.throws(() => training.publishVersion('no-such-version'), { status: 404 });
    const s = training.setSchedule({ cron: 'off', minNewPairs: 3, perUserMinPairs: 2, enabled: false });
    assert.deepEqual(s, { cron: 'off', minNewPairs: 3, perUserMinPairs: 2, enabled: false, nextRunAt: null });
    assert.deepEqual(training.getSchedule(), s);
    assert.throws(() => training.setSchedule({ cron: 'every day', minNewPairs: 1, perUserMinPairs: 1, enabled: true }), { status: 400 });
  });
});
