// Personalization over HTTP: retraining jobs, user-model versions and the schedule (admin), and a
// user's own view of their personalization (GET/DELETE /api/me/personalization).
import { Cron } from 'croner';
import { z } from 'zod';
import type { JsonValue } from '../../db/json.ts';
import { defineRoute, type Route } from '../route.ts';
import { idParamsSchema } from '../schemas.ts';
import {
  personalizationSchema,
  retrainScheduleSchema,
  toPersonalization,
  toRetrainSchedule,
  toTrainingJob,
  toUserModelVersion,
  trainingJobSchema,
  userModelVersionSchema,
} from '../schemas-admin.ts';
import type { TrainingService } from '../../services/training.ts';
import type { RouteDeps } from './deps.ts';

const scheduleBodySchema = z.strictObject({
  cron: z.string().trim().min(1).max(200).refine((c) => {
    if (c === 'off') return true;
    try {
      new Cron(c, { paused: true }).stop();
      return true;
    } catch {
      return false;
    }
  }, 'must be a cron expression (e.g. "0 * * * *") or "off"'),
  minNewPairs: z.number().int().min(1).max(10_000_000),
  perUserMinPairs: z.number().int().min(1).max(10_000_000),
  enabled: z.boolean(),
});

const createJobBodySchema = z.strictObject({
  userIds: z.array(z.string().min(1).max(100)).max(10_000).optional().describe('Retrain only these users (their own parameters); absent: everyone'),
});

const limitQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });

export function trainingRoutes({ authenticator }: RouteDeps, training: TrainingService): Route[] {
  const t = training;
  const tags = ['training'];
  return [
    defineRoute({
      method: 'get', path: '/api/admin/training/jobs', operationId: 'listTrainingJobs', summary: 'Retraining jobs, newest first', tags, auth: 'admin',
      query: limitQuerySchema, response: z.object({ jobs: z.array(trainingJobSchema) }),
      handler: ({ query }) => ({ jobs: t.listJobs(query.limit).map(toTrainingJob) }),
    }, authenticator),
    defineRoute({
      method: 'post', path: '/api/admin/training/jobs', operationId: 'startTrainingJob',
      summary: 'Start a P-DPO retraining job now (everyone, or only userIds); 409 while one runs', tags, auth: 'admin',
      body: createJobBodySchema, status: 202, response: z.object({ job: trainingJobSchema }), responseDescription: 'Accepted: the job runs in the background',
      handler: ({ body, principal }) => ({ job: toTrainingJob(t.startJob({ userIds: body.userIds ?? null, requestedBy: principal.user.id })) }),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/admin/training/jobs/:id', operationId: 'getTrainingJob', summary: 'A job and its per-step log (loss, reward accuracy, margins)', tags, auth: 'admin',
      params: idParamsSchema, response: z.object({ job: trainingJobSchema, history: z.array(z.unknown()) }),
      handler: ({ params }) => {
        const { job, history } = t.jobDetails(params.id);
        return { job: toTrainingJob(job), history: history as JsonValue[] };
      },
    }, authenticator),
    defineRoute({
      method: 'post', path: '/api/admin/training/jobs/:id/cancel', operationId: 'cancelTrainingJob', summary: 'Cancel the running job (409 if it is not running)', tags, auth: 'admin',
      params: idParamsSchema, response: z.object({ job: trainingJobSchema }),
      handler: async ({ params }) => ({ job: toTrainingJob(await t.cancelJob(params.id)) }),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/admin/training/versions', operationId: 'listUserModelVersions', summary: 'User-model versions, newest first; current marks the one serving', tags, auth: 'admin',
      response: z.object({ versions: z.array(userModelVersionSchema) }),
      handler: () => ({ versions: t.listVersions().map(toUserModelVersion) }),
    }, authenticator),
    defineRoute({
      method: 'post', path: '/api/admin/training/versions/:id/publish', operationId: 'publishUserModelVersion',
      summary: 'Publish a version (rollback: publish an earlier one); new replies use it at once', tags, auth: 'admin',
      params: idParamsSchema, response: z.object({ version: userModelVersionSchema }),
      handler: ({ params }) => ({ version: toUserModelVersion({ ...t.publishVersion(params.id), current: true }) }),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/admin/training/schedule', operationId: 'getRetrainSchedule', summary: 'The retraining schedule and thresholds N (new pairs) and M (per user)', tags, auth: 'admin',
      response: retrainScheduleSchema,
      handler: () => toRetrainSchedule(t.getSchedule()),
    }, authenticator),
    defineRoute({
      method: 'put', path: '/api/admin/training/schedule', operationId: 'setRetrainSchedule', summary: 'Edit the retraining schedule (kept across restarts)', tags, auth: 'admin',
      body: scheduleBodySchema, response: retrainScheduleSchema,
      handler: ({ body }) => toRetrainSchedule(t.setSchedule(body)),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/me/personalization', operationId: 'getMyPersonalization',
      summary: 'My votes, comparisons and pairs; whether I am personalized, by which version, when trained and my held-out accuracy', tags: ['account'], auth: 'user',
      response: personalizationSchema,
      handler: ({ principal }) => toPersonalization(t.personalizationOf(principal.user.id)),
    }, authenticator),
    defineRoute({
      method: 'delete', path: '/api/me/personalization', operationId: 'resetMyPersonalization',
      summary: 'Reset my personalization: back to the generic soft prompt now; my earlier pairs are not trained on again', tags: ['account'], auth: 'user',
      responseDescription: 'Reset',
      handler: ({ principal }) => {
        t.resetPersonalization(principal.user.id);
      },
    }, authenticator),
  ];
}
