// The retraining triggers: everyone once N new pairs arrived since the last all-users run; the one
// user furthest past M new pairs since they were last trained (or reset); nothing while a job runs
// or after stop(); a schedule stored across restarts, and a bad cron expression refused as a 400.
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { JobTrigger, TrainingJobRecord } from '../../../server/db/user-models.ts';
import { ValidationError } from '../../../server/errors.ts';
import { RetrainSchedule } from '../../../server/personalize/schedule.ts';
import { UserModelServing } from '../../../server/personalize/serving.ts';
import { addPairs, addUser, publishVersion, settings, type TestDb, testDb, userModelBlob } from '../../helpers/personalization.ts';

type Request = { trigger: JobTrigger; userIds?: string[] | null };

function fakeJobs() {
  const requested: Request[] = [];
  return {
    requested,
    running: false,
    canStart() {
      return !this.running;
    },
    requestJob(opts: Request): TrainingJobRecord {
      requested.push(opts);
      return { id: `job${requested.length}`, status: 'running', createdAt: 0, startedAt: 0, finishedAt: null, error: null, progress: {}, trigger: opts.trigger, scope: opts.userIds ?? null };
    },
  };
}

describe('RetrainSchedule', () => {
  let t: TestDb;
  let serving: UserModelServing;
  let alice: string;
  let bob: string;
  const logger = pino({ level: 'silent' });
  beforeEach(() => {
    t = testDb();
    alice = addUser(t, 'alice');
    bob = addUser(t, 'bob');
    serving = new UserModelServing(t.repos.userModels);
    serving.load();
  });
  afterEach(() => t.close());

  const make = (jobs = fakeJobs(), over: Parameters<typeof settings>[0] = {}) => ({
    jobs,
    schedule: new RetrainSchedule({ db: t.db, repos: t.repos, logger, settings: settings(over), jobs, serving }),
  });

  it('retrains everyone only from N new pairs on, and not while a job runs', () => {
    const { jobs, schedule } = make();
    addPairs(t, alice, 4, 1000);
    assert.equal(schedule.newPairsSinceLastRun(), 4);
    assert.equal(schedule.scheduledCheck(), null, '4 < N = 5');
    addPairs(t, bob, 1, 2000);
    jobs.running = true;
    assert.equal(schedule.scheduledCheck(), null, 'a job runs');
    jobs.running = false;
    assert.equal(schedule.scheduledCheck()?.trigger, 'schedule');
    assert.deepEqual(jobs.requested, [{ trigger: 'schedule' }]);
  });

  it('retrains the user furthest past M new pairs since their version was trained, or since they reset', () => {
    const { jobs, schedule } = make();
    addPairs(t, alice, 10, 1000);
    addPairs(t, bob, 4, 1000);
    // Alice's pairs up to 1009 are in the published version: none of hers is new.
    publishVersion(t, userModelBlob([alice]), 1500, 1009);
    serving.reload();
    assert.deepEqual(schedule.perUserCheck()?.scope, [bob]);
    addPairs(t, alice, 6, 3000);
    assert.deepEqual(schedule.perUserCheck()?.scope, [alice], '6 new pairs beat 4');
    serving.resetUser(alice, 3003);
    assert.deepEqual(schedule.perUserCheck()?.scope, [bob], 'only 2 of alice\'s pairs are after her reset');
    assert.ok(jobs.requested.every((r) => r.trigger === 'user'));
  });

  it('does not retrain per user while disabled, under M, or with a job running', () => {
    addPairs(t, alice, 2, 1000);
    const { jobs, schedule } = make();
    assert.equal(schedule.perUserCheck(), null, '2 < M = 3');
    addPairs(t, alice, 1, 2000);
    jobs.running = true;
    assert.equal(schedule.perUserCheck(), null);
    jobs.running = false;
    const off = make(fakeJobs(), { schedule: { cron: 'off', minNewPairs: 5, perUserMinPairs: 3, enabled: false } });
    assert.equal(off.schedule.perUserCheck(), null);
    assert.deepEqual(schedule.perUserCheck()?.scope, [alice]);
  });

  it('stores the schedule an admin sets, refuses a bad cron expression as a ValidationError, and checks nothing once stopped', () => {
    const { schedule } = make();
    schedule.start();
    const set = schedule.set({ cron: '*/5 * * * *', minNewPairs: 7, perUserMinPairs: 9, enabled: true });
    assert.ok(set.nextRunAt && set.nextRunAt > Date.now());
    assert.throws(() => schedule.set({ cron: 'nonsense', minNewPairs: 1, perUserMinPairs: 1, enabled: true }), (e: unknown) => e instanceof ValidationError && e.status === 400);
    schedule.stop();
    assert.equal(schedule.get().nextRunAt, null);
    const { schedule: restarted } = make();
    assert.deepEqual({ ...restarted.get(), nextRunAt: null }, { cron: '*/5 * * * *', minNewPairs: 7, perUserMinPairs: 9, enabled: true, nextRunAt: null });
    addPairs(t, alice, 9, 1000);
    assert.equal(schedule.scheduledCheck(), null, 'stopped');
    assert.equal(schedule.perUserCheck(), null, 'stopped');
  });
});
