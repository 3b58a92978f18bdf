// The socket contract, once: each client → server event with its zod payload schema, each server →
// client event with its payload type, and what the server keeps per socket. The server is typed with
// these (`new Server<ClientToServerEvents, ServerToClientEvents, {}, SocketData>`) and a client can
// import them type-only, so an event's name and payload exist in one place.
//
// Client → server: each event carries exactly one payload (a JSON object) and no acknowledgement
// callback. The server answers with events, never acks: a packet that asks for an ack is refused
// (validation_failed), and its ack is called once with that same error so `emitWithAck` callers do
// not hang.
import { z } from 'zod';
import { COMPARISON_CHOICES, type ComparisonChoice, samplingInputSchema } from '../services/chat.ts';
import type { Principal } from '../services/auth.ts';
import type { ConversationView, MessageView, TrainingJobView } from '../services/views.ts';

const id = z.uuid();

export const sendPayloadSchema = z.strictObject({
  conversationId: id.optional(),
  // The length limit is the service's (a 413-style error), so any string passes here.
  content: z.string().trim().min(1, 'content must not be empty'),
  sampling: samplingInputSchema.optional(),
  compare: z.boolean({ error: 'compare must be true or false' }).optional(),
});
export const choosePayloadSchema = z.strictObject({
  comparisonId: id,
  choice: z.enum(COMPARISON_CHOICES, { error: `choice must be one of ${COMPARISON_CHOICES.join(', ')}` }),
});
export const messageRefPayloadSchema = z.strictObject({ messageId: id });
export const regeneratePayloadSchema = messageRefPayloadSchema.extend({ sampling: samplingInputSchema.optional() });

/** Every event a client may send, with its payload's schema. Anything else is refused unheard. */
export const CLIENT_EVENT_SCHEMAS = {
  'message:send': sendPayloadSchema,
  'message:regenerate': regeneratePayloadSchema,
  'message:abort': messageRefPayloadSchema,
  'compare:choose': choosePayloadSchema,
} as const;

export type ClientEventName = keyof typeof CLIENT_EVENT_SCHEMAS;
export type ClientPayload<E extends ClientEventName> = z.output<(typeof CLIENT_EVENT_SCHEMAS)[E]>;

export const KNOWN_EVENTS: ReadonlySet<string> = new Set(Object.keys(CLIENT_EVENT_SCHEMAS));
export const isKnownEvent = (name: unknown): name is ClientEventName => typeof name === 'string' && KNOWN_EVENTS.has(name);

/**
 * What the server's listeners receive: the payload after the edge has checked it and zod has parsed
 * it (the schemas only trim, so this is also what a client sends).
 */
export type ClientToServerEvents = { [E in ClientEventName]: (payload: ClientPayload<E>) => void };

export type Candidate = 'A' | 'B';

export interface ErrorPayload {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

export interface MessageStartEvent {
  conversation: ConversationView;
  created: boolean;
  userMessage: MessageView | null;
  message: MessageView;
}
export interface MessageDeltaEvent {
  conversationId: string;
  messageId: string;
  delta: string;
  candidate?: Candidate;
  comparisonId?: string;
}
export interface MessageDoneEvent {
  conversationId: string;
  message: MessageView;
  candidate?: Candidate;
  comparisonId?: string;
}
/** Instead of message:start when a send is answered by two candidates. */
export interface CompareStartEvent {
  conversation: ConversationView;
  created: boolean;
  userMessage: MessageView;
  comparisonId: string;
  candidates: Record<Candidate, MessageView>;
}
/** Both candidates are done. */
export interface CompareReadyEvent {
  conversationId: string;
  comparisonId: string;
  candidates: Record<Candidate, MessageView>;
}
export interface CompareChosenEvent {
  conversationId: string;
  comparisonId: string;
  choice: ComparisonChoice | null;
  activeMessageId: string;
  preferencePairId: string | null;
}
/**
 * A training step (admins only): the job's progress as it now stands (what its `progress` holds, an
 * earlier preparation phase's count included) and the step's point on the training curve.
 */
export interface TrainingProgressEvent {
  jobId: string;
  phase?: string;
  step: number;
  totalSteps: number;
  loss: number | null;
  accuracy: number | null;
  margin: number | null;
  etaSeconds: number | null;
  /** Of a preparation phase (e.g. reference log-probs): how far it got. */
  done?: number;
  total?: number;
  point: { step: number; loss: number | null; accuracy: number | null; margin: number | null };
}
export interface TrainingJobEvent {
  job: TrainingJobView;
}
/** New soft prompts serve; times are ISO-8601, as on every wire. */
export interface PublishedEvent {
  versionId: string | null;
  publishedAt: string | null;
}

export interface ServerToClientEvents {
  'message:start': (e: MessageStartEvent) => void;
  'message:delta': (e: MessageDeltaEvent) => void;
  'message:done': (e: MessageDoneEvent) => void;
  'compare:start': (e: CompareStartEvent) => void;
  'compare:ready': (e: CompareReadyEvent) => void;
  'compare:chosen': (e: CompareChosenEvent) => void;
  /** Any refusal or failure; the socket stays connected unless its credential ended (code credentials_ended). */
  error: (e: ErrorPayload) => void;
  'training:progress': (e: TrainingProgressEvent) => void;
  'training:job': (e: TrainingJobEvent) => void;
  'personalization:published': (e: PublishedEvent) => void;
}

/** Set at the handshake; the role is kept current by role-change notices and the per-event check. */
export interface SocketData {
  principal: Principal;
}
