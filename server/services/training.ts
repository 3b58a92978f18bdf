// Retraining and personalization as the edges use them: admins' jobs, versions and schedule, a user's
// own view and reset, and the events the admin sockets relay. Over the personalization service
// (personalize/), which main.ts builds once the model is loaded.
import type { EventEmitter } from 'node:events';
import type { JsonValue } from '../db/json.ts';
import type { TrainingJobRecord, UserModelVersionRecord } from '../db/user-models.ts';
import type { PersonalizationEvents, PersonalizationService, UserPersonalization } from '../personalize/personalization-service.ts';
import type { ScheduleSettings } from '../personalize/schedule.ts';

/** What a listener of the training service is handed, per event. */
/** A user's own personalization as the service reports it (times in epoch milliseconds). */
export type { UserPersonalization };

export type TrainingListener<E extends keyof PersonalizationEvents> = (...args: PersonalizationEvents[E]) => void;

/** Where retraining progress and publish notices come from (the admin sockets subscribe here). */
export interface TrainingEventSource {
  /** Listeners run in place; one that throws is logged and the job goes on. */
  on<E extends keyof PersonalizationEvents>(event: E, listener: TrainingListener<E>): void;
}

export interface TrainingService extends TrainingEventSource {
  listJobs(limit: number): TrainingJobRecord[];
  /** An admin's job, for everyone or only `userIds`; 409 while another runs. */
  startJob(opts: { userIds: string[] | null; requestedBy: string }): TrainingJobRecord;
  jobDetails(id: string): { job: TrainingJobRecord; history: JsonValue[] };
  /** Cancels the running job and resolves with it once its end is recorded; 409 if it is not running. */
  cancelJob(id: string): Promise<TrainingJobRecord>;
  listVersions(): (UserModelVersionRecord & { current: boolean })[];
  /** Publish, or roll back to, a version with weights: new replies use it at once. */
  publishVersion(id: string): UserModelVersionRecord;
  getSchedule(): ScheduleSettings & { nextRunAt: number | null };
  setSchedule(s: ScheduleSettings): ScheduleSettings & { nextRunAt: number | null };
  personalizationOf(userId: string): UserPersonalization;
  /** Back to the generic soft prompt now; the user's earlier pairs are not trained on again. */
  resetPersonalization(userId: string): void;
}

export function createTrainingService(personalization: PersonalizationService): TrainingService {
  const p = personalization;
  return {
    listJobs: (limit) => p.listJobs(limit),
    startJob: ({ userIds, requestedBy }) => p.requestJob({ trigger: 'admin', userIds, requestedBy }),
    jobDetails: (id) => p.jobDetails(id),
    async cancelJob(id) {
      p.cancelJob(id);
      await p.idle();
      return p.jobDetails(id).job;
    },
    listVersions: () => p.listVersions(),
    publishVersion: (id) => p.publishVersion(id),
    getSchedule: () => p.getSchedule(),
    setSchedule: (s) => p.setSchedule(s),
    personalizationOf: (userId) => p.personalizationOf(userId),
    resetPersonalization: (userId) => p.resetUser(userId),
    on(event, listener) {
      // Untyped: TypeScript cannot resolve the typed emitter's listener type for a generic event name.
      (p as EventEmitter).on(event, listener as (...args: unknown[]) => void);
    },
  };
}
