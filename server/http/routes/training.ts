// Personalization over HTTP: retraining jobs, user-model versions and the schedule (admin), and a
// user's own view of their personalization (GET/DELETE /api/me/personalization).
import { Cron } from 'croner';
import { z } from 'zod';
import type { JsonValue } from '../../db/json.ts';
import type { UserModelVersionRecord } from '../../db/user-models.ts';
import { trainingJobView as toJob } from '../../services/views.ts';
import type { PersonalizationService } from '../../personalize/jobs.ts';
import { defineRoute, type Route } from '../route.ts';
import { idParamsSchema } from '../schemas.ts';
import type { RouteDeps } from './deps.ts';

const progressSchema = z.object({
  phase: z.string(),
  step: z.number(),
  totalSteps: z.number(),
  loss: z.number().nullable(),
  accuracy: z.number().nullable(),
  margin: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  done: z.number(),
  total: z.number(),
}).partial().passthrough();

export const jobSchema = z.object({
  id: z.string(),
  status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
  trigger: z.enum(['admin', 'schedule', 'user']),
  scope: z.array(z.string()).nullable().describe('User ids of a per-user job; null: everyone'),
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  error: z.string().nullable(),
  progress: progressSchema,
  versionId: z.string().nullable(),
}).meta({ id: 'TrainingJob' });

const versionSchema = z.object({
  id: z.string(),
  createdAt: z.number(),
  publishedAt: z.number().nullable(),
  status: z.string().describe('training, published, rejected (by the held-out gate), failed or superseded'),
  current: z.boolean(),
  reason: z.string().nullable(),
  jobId: z.string().nullable(),
  dataThrough: z.number().nullable(),
  config: z.record(z.string(), z.unknown()),
  metrics: z.record(z.string(), z.unknown()).describe('heldoutAccuracy, currentHeldoutAccuracy, perUser [{userId, username, accuracy, pairs}], pairs, seconds'),
}).meta({ id: 'UserModelVersion' });

const scheduleSchema = z.object({
  cron: z.string(),
  minNewPairs: z.number().int(),
  perUserMinPairs: z.number().int(),
  enabled: z.boolean(),
  nextRunAt: z.number().nullable(),
}).meta({ id: 'RetrainSchedule' });

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

const personalizationSchema = z.object({
  votes: z.number().int(),
  comparisons: z.number().int(),
  pairs: z.number().int(),
  personalized: z.boolean(),
  version: z.object({ id: z.string(), publishedAt: z.number().nullable() }).nullable(),
  lastTrainedAt: z.number().nullable(),
  heldoutAccuracy: z.number().nullable(),
  resetAt: z.number().nullable(),
}).meta({ id: 'Personalization' });

const limitQuerySchema = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });

const toVersion = (v: UserModelVersionRecord & { current?: boolean }) => ({
  id: v.id,
  createdAt: v.createdAt,
  publishedAt: v.publishedAt,
  status: v.status,
  current: v.current ?? false,
  reason: v.reason ?? null,
  jobId: v.jobId ?? null,
  dataThrough: v.dataThrough ?? null,
  config: v.config,
  metrics: v.metrics,
});

export function trainingRoutes({ authenticator }: RouteDeps, personalization: PersonalizationService): Route[] {
  const p = personalization;
  const tags = ['training'];
  return [
    defineRoute({
      method: 'get', path: '/api/admin/training/jobs', operationId: 'listTrainingJobs', summary: 'Retraining jobs, newest first', tags, auth: 'admin',
      query: limitQuerySchema, response: z.object({ jobs: z.array(jobSchema) }),
      handler: ({ query }) => ({ jobs: p.listJobs(query.limit).map(toJob) }),
    }, authenticator),
    defineRoute({
      method: 'post', path: '/api/admin/training/jobs', operationId: 'startTrainingJob',
      summary: 'Start a P-DPO retraining job now (everyone, or only userIds); 409 while one runs', tags, auth: 'admin',
      body: createJobBodySchema, status: 202, response: z.object({ job: jobSchema }), responseDescription: 'Accepted: the job runs in the background',
      handler: ({ body, principal }) => ({ job: toJob(p.requestJob({ trigger: 'admin', userIds: body.userIds ?? null, requestedBy: principal.user.id })) }),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/admin/training/jobs/:id', operationId: 'getTrainingJob', summary: 'A job and its per-step log (loss, reward accuracy, margins)', tags, auth: 'admin',
      params: idParamsSchema, response: z.object({ job: jobSchema, history: z.array(z.unknown()) }),
      handler: ({ params }) => {
        const { job, history } = p.jobDetails(params.id);
        return { job: toJob(job), history: history as JsonValue[] };
      },
    }, authenticator),
    defineRoute({
      method: 'post', path: '/api/admin/training/jobs/:id/cancel', operationId: 'cancelTrainingJob', summary: 'Cancel the running job (409 if it is not running)', tags, auth: 'admin',
      params: idParamsSchema, response: z.object({ job: jobSchema }),
      handler: async ({ params }) => {
        p.cancelJob(params.id);
        await p.idle();
        return { job: toJob(p.jobDetails(params.id).job) };
      },
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/admin/training/versions', operationId: 'listUserModelVersions', summary: 'User-model versions, newest first; current marks the one serving', tags, auth: 'admin',
      response: z.object({ versions: z.array(versionSchema) }),
      handler: () => ({ versions: p.listVersions().map(toVersion) }),
    }, authenticator),
    defineRoute({
      method: 'post', path: '/api/admin/training/versions/:id/publish', operationId: 'publishUserModelVersion',
      summary: 'Publish a version (rollback: publish an earlier one); new replies use it at once', tags, auth: 'admin',
      params: idParamsSchema, response: z.object({ version: versionSchema }),
      handler: ({ params }) => ({ version: toVersion({ ...p.publishVersion(params.id), current: true }) }),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/admin/training/schedule', operationId: 'getRetrainSchedule', summary: 'The retraining schedule and thresholds N (new pairs) and M (per user)', tags, auth: 'admin',
      response: scheduleSchema,
      handler: () => p.getSchedule(),
    }, authenticator),
    defineRoute({
      method: 'put', path: '/api/admin/training/schedule', operationId: 'setRetrainSchedule', summary: 'Edit the retraining schedule (kept across restarts)', tags, auth: 'admin',
      body: scheduleBodySchema, response: scheduleSchema,
      handler: ({ body }) => p.setSchedule(body),
    }, authenticator),
    defineRoute({
      method: 'get', path: '/api/me/personalization', operationId: 'getMyPersonalization',
      summary: 'My votes, comparisons and pairs; whether I am personalized, by which version, when trained and my held-out accuracy', tags: ['account'], auth: 'user',
      response: personalizationSchema,
      handler: ({ principal }) => p.personalizationOf(principal.user.id),
    }, authenticator),
    defineRoute({
      method: 'delete', path: '/api/me/personalization', operationId: 'resetMyPersonalization',
      summary: 'Reset my personalization: back to the generic soft prompt now; my earlier pairs are not trained on again', tags: ['account'], auth: 'user',
      responseDescription: 'Reset',
      handler: ({ principal }) => {
        p.resetUser(principal.user.id);
      },
    }, authenticator),
  ];
}
