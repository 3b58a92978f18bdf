// The JSON shapes the client reads from the API and the socket: the server's own zod response schemas
// (what the OpenAPI document describes) and its socket contract, imported type-only, so that a field
// exists once and a change on the server fails the client's typecheck. Times are ISO-8601 strings on
// every wire. Kept free of DOM types so the pure modules beside it run under Node's tests.
import type { z } from 'zod';
import type {
  conversationComparisonSchema,
  conversationDetailSchema,
  conversationSchema,
  feedbackSchema,
  messageFeedbackSchema,
  messageSchema,
  userSchema,
} from '../../../server/http/schemas.ts';
import type {
  adminUserPageSchema,
  adminUserSchema,
  feedbackStatsSchema,
  personalizationSchema,
  retrainScheduleSchema,
  trainingJobSchema,
  userModelVersionSchema,
} from '../../../server/http/schemas-admin.ts';
import type {
  CompareChosenEvent,
  CompareReadyEvent,
  CompareStartEvent,
  MessageDeltaEvent,
  MessageDoneEvent,
  MessageStartEvent,
} from '../../../server/realtime/events.ts';

export type { Candidate, ErrorPayload, TrainingProgressEvent } from '../../../server/realtime/events.ts';

export type User = z.output<typeof userSchema>;
export type Role = User['role'];

export type Conversation = z.output<typeof conversationSchema>;

export type MessageFeedback = z.output<typeof messageFeedbackSchema>;
export type FeedbackValue = MessageFeedback['value'];
/**
 * A message over HTTP or on the socket: the socket's carry their conversationId; a conversation's
 * detail adds the user's own vote (null: none; absent: not said).
 */
export type Message = z.output<typeof messageSchema> & { conversationId?: string; feedback?: MessageFeedback | null };
export type MessageStatus = Message['status'];

export type StoredComparison = z.output<typeof conversationComparisonSchema>;
export type ComparisonChoice = NonNullable<StoredComparison['choice']>;
export type ConversationDetail = z.output<typeof conversationDetailSchema>;
export type Feedback = z.output<typeof feedbackSchema>;

/** Socket payloads (server → client). */
export type StartPayload = MessageStartEvent;
export type DeltaPayload = MessageDeltaEvent;
export type DonePayload = MessageDoneEvent;
export type CompareStartPayload = CompareStartEvent;
export type CompareReadyPayload = CompareReadyEvent;
export type CompareChosenPayload = CompareChosenEvent;

/** Personalization (P-DPO). */
export type PersonalizationStatus = z.output<typeof personalizationSchema>;
export type TrainingJob = z.output<typeof trainingJobSchema>;
export type JobStatus = TrainingJob['status'];
/** What a job reports of itself: training steps, or a preparation phase (e.g. reference log-probs) with its own count. */
export type JobProgress = TrainingJob['progress'];
export type TrainingVersion = z.output<typeof userModelVersionSchema>;
export type TrainingSchedule = z.output<typeof retrainScheduleSchema>;

/** Admin. */
export type AdminUser = z.output<typeof adminUserSchema>;
export type AdminUserPage = z.output<typeof adminUserPageSchema>;
export type FeedbackStats = z.output<typeof feedbackStatsSchema>;

/** One point of a training curve, as the charts draw it (from a job's stored history or live progress). */
export interface HistoryPoint {
  step: number;
  loss: number | null;
  accuracy: number | null;
  margin?: number | null;
}

/** One user's held-out accuracy in a version's metrics.perUser (a free-form record on the wire, read by the charts). */
export interface PerUserAccuracy {
  userId: string;
  username: string;
  accuracy: number | null;
  pairs: number;
}

/** The fields of a version's free-form metrics that the dashboard shows; anything may be absent. */
export interface VersionMetrics {
  heldoutAccuracy?: number | null;
  perUser?: PerUserAccuracy[];
}
