// The JSON shapes the client reads from the API and the socket (mirrors of the server's views; times
// are ISO-8601 strings). Kept free of DOM types so the pure modules beside it run under Node's tests.

export type Role = 'user' | 'admin';
export interface User {
  id: string;
  username: string;
  role: Role;
  createdAt: string;
}

export interface Conversation {
  id: string;
  title: string;
  createdAt: string;
  updatedAt: string;
}

export type MessageStatus = 'complete' | 'partial' | 'error';
export interface Message {
  id: string;
  conversationId?: string;
  parentId: string | null;
  role: 'system' | 'user' | 'assistant';
  content: string;
  status: MessageStatus;
  finishReason: string | null;
  modelId: string | null;
  userModelVersion: string | null;
  sampling: Record<string, unknown> | null;
  seed: number | null;
  createdAt: string;
  /** The user's own vote (conversation detail over HTTP); null: none; absent: not said. */
  feedback?: MessageFeedback | null;
}

export interface MessageFeedback {
  value: FeedbackValue;
  reasons: string[];
  comment: string | null;
  updatedAt: string;
}

export interface ConversationDetail extends Conversation {
  messages: Message[];
  /** A/B comparisons of this conversation (absent from servers that predate them). */
  comparisons?: StoredComparison[];
}

export interface StoredComparison {
  id: string;
  messageA: string;
  messageB: string;
  choice: ComparisonChoice | null;
}

export type FeedbackValue = 'up' | 'down';
export interface Feedback {
  messageId: string;
  value: FeedbackValue;
  reasons: string[];
  comment: string | null;
  createdAt: string;
  updatedAt: string;
  preferencePairs: number;
}

export type ComparisonChoice = 'A' | 'B' | 'tie' | 'both_bad';
export type Candidate = 'A' | 'B';

/** Socket payloads (server → client). */
export interface StartPayload {
  conversation: Conversation;
  created: boolean;
  userMessage: Message | null;
  message: Message;
}
export interface DeltaPayload {
  conversationId: string;
  messageId: string;
  delta: string;
  candidate?: Candidate;
  comparisonId?: string;
}
export interface DonePayload {
  conversationId: string;
  message: Message;
  candidate?: Candidate;
  comparisonId?: string;
}
export interface CompareStartPayload {
  conversation: Conversation;
  created: boolean;
  userMessage: Message;
  comparisonId: string;
  candidates: { A: Message; B: Message };
}
export interface CompareReadyPayload {
  conversationId: string;
  comparisonId: string;
  candidates: { A: Message; B: Message };
}
export interface CompareChosenPayload {
  conversationId: string;
  comparisonId: string;
  choice: ComparisonChoice;
  activeMessageId: string;
  preferencePairId: string | null;
}
export interface ErrorPayload {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** Personalization (P-DPO) contract. */
export interface PersonalizationStatus {
  votes: number;
  comparisons: number;
  pairs: number;
  personalized: boolean;
  version: { id: string; publishedAt: number | string | null } | null;
  lastTrainedAt: number | string | null;
  heldoutAccuracy: number | null;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export interface JobProgress {
  step: number;
  totalSteps: number;
  loss: number | null;
  accuracy: number | null;
  etaSeconds: number | null;
  /** Preparation phases before training (e.g. reference log-probs), with their own count. */
  phase?: string;
  done?: number;
  total?: number;
}
export interface TrainingJob {
  id: string;
  status: JobStatus;
  trigger: 'admin' | 'schedule' | 'user';
  createdAt: number | string;
  startedAt: number | string | null;
  finishedAt: number | string | null;
  error: string | null;
  progress: Partial<JobProgress> | null;
  versionId: string | null;
}
export interface HistoryPoint {
  step: number;
  loss: number | null;
  accuracy: number | null;
  margin?: number | null;
}
export interface TrainingProgressEvent {
  jobId: string;
  step: number;
  totalSteps: number;
  loss: number | null;
  accuracy: number | null;
  etaSeconds: number | null;
  phase?: string;
  done?: number;
  total?: number;
  margin?: number | null;
}
export interface PerUserAccuracy {
  userId: string;
  username: string;
  accuracy: number | null;
  pairs: number;
}
export interface TrainingVersion {
  id: string;
  createdAt: number | string;
  publishedAt: number | string | null;
  status: string;
  current: boolean;
  metrics: { heldoutAccuracy: number | null; perUser: PerUserAccuracy[] } | null;
  reason: string | null;
}
export interface TrainingSchedule {
  cron: string;
  minNewPairs: number;
  perUserMinPairs: number;
  enabled: boolean;
  nextRunAt: number | string | null;
}
