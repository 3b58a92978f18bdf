// Chat turns: store the user's message, build the prompt from the conversation's active path (the
// chat template over the history), stream the assistant's answer from the engine and store it with
// its provenance. Regeneration adds a sibling answer under the same user message.
//
// The engine takes the prompt first: a conversation too long for the context loses its oldest turns
// (the stored history stays whole), and a newest message that cannot fit with room for the answer is
// refused (400 context_length_exceeded) before anything is stored. Then the user's message and the
// assistant message are inserted before the first token (status 'partial', empty content), so a
// client learns its id at once (to abort it), and the streamed text is checkpointed into that row at
// least every CHECKPOINT_INTERVAL_MS or CHECKPOINT_EVERY_DELTAS deltas: a crash mid-stream loses at
// most that much of what the client saw. Transports (socket.io) pass callbacks; nothing here knows
// about sockets.
import { randomInt, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ComparisonChoice, ComparisonRecord } from '../db/comparisons.ts';

export { COMPARISON_CHOICES, type ComparisonChoice } from '../db/comparisons.ts';
import type { ConversationRecord, MessageRecord, MessageStatus } from '../db/conversations.ts';
import type { JsonObject } from '../db/json.ts';
import { storageErrorOf } from '../db/storage.ts';
import { Conflict, NotFound, PayloadTooLarge, ServiceUnavailable, ValidationError } from '../errors.ts';
import { ENGINE_CLOSED, isLmError } from '../lm/errors.ts';
import type { GenerateOptions } from '../lm/engine.ts';
import type { FinishReason, GenerationResult, GenerationStream } from '../lm/scheduler.ts';
import { SAMPLING_LIMITS, type SamplingParams } from '../lm/sampling.ts';
import { type ChatMessage, isChatTemplateRefusal } from '../lm/tokenizer.ts';
import { metrics } from '../metrics.ts';
import type { ServiceContext } from './context.ts';
import { pathTo } from './history.ts';

/** What the chat service needs of the engine (tests may wrap the real one). */
export interface ChatEngine {
  generate(opts: GenerateOptions): GenerationStream;
}

/** A user's soft prompt from the published user-model version (personalize/). */
export interface UserPrefix {
  /** [T_u × hidden] row-major, or null: no personalization (the LM alone). */
  prefix: Float32Array | null;
  /** The user-model version, when the prefix is the user's own (personalized); null when generic. */
  version: string | null;
  /** personal (their own e_i), generic (a version's e_0) or none (the LM alone). */
  source?: 'personal' | 'generic' | 'none';
  /** The version the prefix came from, personal or generic. */
  sourceVersion?: string | null;
}

/** Resolves a user's current soft prompt; read once per generation, so a publish is atomic per reply. */
export interface UserPrefixSource {
  prefixFor(userId: string): UserPrefix;
}

export interface ChatDeps {
  engine: ChatEngine;
  /** Provenance: which base model answered, by its directory's name (a message's modelId on the wire, /v1's model). */
  modelName: string;
  /** Personalization; absent: every answer is generic (no soft prompt). */
  userModels?: UserPrefixSource;
}

const bounded = (field: keyof typeof SAMPLING_LIMITS) => {
  const { min, max } = SAMPLING_LIMITS[field];
  return z.number({ error: `${field} must be a number` }).min(min, `${field} must be at least ${min}`).max(max, `${field} must be at most ${max}`);
};

/** Per-message sampling overrides; absent fields come from the server's defaults. */
export const samplingInputSchema = z.strictObject({
  temperature: bounded('temperature').optional(),
  topK: bounded('topK').int('topK must be an integer').optional(),
  topP: bounded('topP').optional(),
  repetitionPenalty: bounded('repetitionPenalty').gt(0, 'repetitionPenalty must be greater than 0').optional(),
  seed: bounded('seed').int('seed must be an integer').optional(),
  maxNewTokens: z.number().int('maxNewTokens must be an integer').min(1, 'maxNewTokens must be at least 1').max(32_768).optional(),
});
export type SamplingInput = z.infer<typeof samplingInputSchema>;

export interface SendInput {
  conversationId?: string;
  content: string;
  sampling?: SamplingInput;
  /** Answer with two candidates for an A/B choice; absent: with probability config.abFraction. */
  compare?: boolean;
}

export type Candidate = 'A' | 'B';

/** Called as the reply progresses; the transport forwards these to the client. */
export interface ReplyHooks {
  /** The stored user message (absent on regenerate) and the assistant placeholder, before any token. */
  onStart(started: { conversation: ConversationRecord; created: boolean; userMessage: MessageRecord | null; message: MessageRecord }): void;
  /** Instead of onStart when the turn is answered by two candidates. */
  onCompareStart(started: { conversation: ConversationRecord; created: boolean; userMessage: MessageRecord; comparison: ComparisonRecord; candidates: Record<Candidate, MessageRecord> }): void;
  onDelta(delta: string, message: MessageRecord, candidate?: Candidate): void;
  /** A candidate of a comparison finished (the comparison's outcome follows when both have). */
  onCandidateDone?(message: MessageRecord, candidate: Candidate, error?: unknown): void;
}

export interface CompareOutcome {
  kind: 'compare';
  conversation: ConversationRecord;
  comparison: ComparisonRecord;
  candidates: Record<Candidate, MessageRecord>;
}

export interface ChoiceOutcome {
  comparison: ComparisonRecord;
  /** The answer the conversation continues from. */
  activeMessageId: string;
  preferencePairId: string | null;
}

export interface ReplyOutcome {
  kind: 'reply';
  conversation: ConversationRecord;
  message: MessageRecord;
  /** Set when the engine failed; the message is stored with status 'error'. */
  error?: unknown;
}

/** A streaming answer's text is written to its row at least this often while deltas arrive… */
export const CHECKPOINT_INTERVAL_MS = 1000;
/** …or after this many deltas (each at most one token's text), whichever comes first. */
export const CHECKPOINT_EVERY_DELTAS = 32;

const TITLE_WORDS = 8;
const TITLE_CHARS = 60;

/** The first few words of the first message, as the conversation's title. */
export function titleFrom(content: string): string {
  const words = content.trim().split(/\s+/).filter(Boolean).slice(0, TITLE_WORDS).join(' ');
  if (!words) return 'New conversation';
  return words.length > TITLE_CHARS ? `${words.slice(0, TITLE_CHARS - 1).trimEnd()}…` : words;
}

export const statusOf = (reason: FinishReason): MessageStatus => (reason === 'abort' ? 'partial' : reason === 'error' ? 'error' : 'complete');

export type ChatService = ReturnType<typeof createChatService>;

export function createChatService(ctx: ServiceContext, deps: ChatDeps) {
  const { db, repos, config, logger, now } = ctx;
  /** Generations in flight, by assistant message id. */
  const active = new Map<string, { userId: string; controller: AbortController }>();

  const ownedConversation = (userId: string, id: string): ConversationRecord => {
    const c = repos.conversations.findForUser(id, userId);
    if (!c) throw new NotFound('no such conversation');
    return c;
  };
  const ownedMessage = (userId: string, id: string): { conversation: ConversationRecord; message: MessageRecord } => {
    const message = repos.conversations.findMessage(id);
    const conversation = message && repos.conversations.findForUser(message.conversationId, userId);
    if (!message || !conversation) throw new NotFound('no such message');
    return { conversation, message };
  };

  /** The prompt of the next answer under `leafId`. */
  const promptFor = (conversationId: string, leafId: string): ChatMessage[] => pathTo(repos.conversations.listMessages(conversationId), leafId);

  /** The newest leaf of the conversation: the end of its active path, where a new message attaches. */
  function activeLeaf(conversationId: string): MessageRecord | undefined {
    const messages = repos.conversations.listMessages(conversationId);
    if (messages.length === 0) return undefined;
    const hasChild = new Set(messages.map((m) => m.parentId).filter((p): p is string => p !== null));
    // The candidate not chosen in an A/B comparison is a side branch; until the user picks (or on a
    // tie / both bad) A continues the conversation.
    const setAside = new Set(repos.comparisons.listForConversation(conversationId).map((c) => (c.choice === 'B' ? c.messageA : c.messageB)));
    const leaves = messages.filter((m) => !hasChild.has(m.id) && !setAside.has(m.id));
    return leaves.at(-1);
  }

  function resolveSampling(input: SamplingInput | undefined): { params: SamplingParams; maxNewTokens: number } {
    const params: SamplingParams = {
      temperature: input?.temperature ?? config.temperature,
      topK: input?.topK ?? 0,
      topP: input?.topP ?? config.topP,
      repetitionPenalty: input?.repetitionPenalty ?? 1,
      seed: input?.seed ?? randomInt(0, 0x1_0000_0000),
    };
    return { params, maxNewTokens: Math.min(input?.maxNewTokens ?? config.maxNewTokens, config.maxNewTokens) };
  }

  /** Where a new user message goes: the conversation (new or owned) and the end of its active path. */
  interface TurnPlan {
    conversation: ConversationRecord;
    created: boolean;
    parent: MessageRecord | undefined;
  }

  function planTurn(userId: string, input: SendInput): TurnPlan {
    if (input.conversationId === undefined) {
      const t = now();
      return { conversation: { id: randomUUID(), userId, title: titleFrom(input.content), createdAt: t, updatedAt: t }, created: true, parent: undefined };
    }
    const conversation = ownedConversation(userId, input.conversationId);
    return { conversation, created: false, parent: activeLeaf(conversation.id) };
  }

  const insertUserTurn = (plan: TurnPlan, content: string): MessageRecord => {
    const t = now();
    if (plan.created) repos.conversations.insert(plan.conversation);
    const userMessage: MessageRecord = {
      id: randomUUID(),
      conversationId: plan.conversation.id,
      parentId: plan.parent?.id ?? null,
      role: 'user',
      content,
      status: 'complete',
      finishReason: null,
      modelName: null,
      userModelVersion: null,
      sampling: null,
      seed: null,
      createdAt: t,
    };
    repos.conversations.insertMessage(userMessage);
    repos.conversations.touch(plan.conversation.id, t);
    return userMessage;
  };

  /** A generation the engine has accepted, whose assistant row is not stored yet. */
  interface Started {
    stream: GenerationStream;
    controller: AbortController;
    params: SamplingParams;
    maxNewTokens: number;
    personal: UserPrefix;
  }

  interface Prepared extends Started {
    message: MessageRecord;
  }

  /**
   * Hands the prompt to the engine before anything is stored, so that a prompt the model cannot take
   * is refused with nothing written. The engine drops the oldest turns that do not fit; a newest
   * message too long to leave room for the answer is a 400 (the engine's one rule, see fitContext).
   */
  function start(userId: string, messages: ChatMessage[], sampling: SamplingInput | undefined, seed?: number): Started {
    const { params, maxNewTokens } = resolveSampling(seed === undefined ? sampling : { ...sampling, seed });
    // Read once: a version published mid-reply does not change this reply's soft prompt.
    const personal = deps.userModels?.prefixFor(userId) ?? { prefix: null, version: null };
    const controller = new AbortController();
    try {
      const stream = deps.engine.generate({ messages, prefix: personal.prefix ?? undefined, sampling: params, maxNewTokens, signal: controller.signal, fitContext: true });
      return { stream, controller, params, maxNewTokens, personal };
    } catch (e) {
      throw refusalOf(e);
    }
  }

  /** What the client learns when the engine will not take a prompt: their fault (4xx) or ours (503). */
  function refusalOf(e: unknown): unknown {
    if (isLmError(e, 'context_length_exceeded')) {
      const d = (e.details ?? {}) as { promptTokens?: number; maxPromptTokens?: number; contextTokens?: number; reservedTokens?: number };
      return new ValidationError(
        `the message is too long for the model: it takes ${d.promptTokens} tokens, and the model's context of ${d.contextTokens} tokens holds at most ${d.maxPromptTokens} ` +
          `once ${d.reservedTokens} are kept for the answer (earlier turns are already left out); shorten it`,
        { promptTokens: d.promptTokens, maxPromptTokens: d.maxPromptTokens, contextTokens: d.contextTokens, reservedTokens: d.reservedTokens },
        'context_length_exceeded',
      );
    }
    // The model's own chat template refuses this conversation: the messages are at fault.
    if (isChatTemplateRefusal(e)) return new ValidationError("the model's chat template cannot format this conversation", {}, 'prompt_rejected');
    if (isLmError(e, 'bad_argument') && e.details?.reason === ENGINE_CLOSED) return new ServiceUnavailable('the server is shutting down: nothing was saved; try again shortly', 'unavailable');
    logger.error({ err: e }, 'the engine refused a generation');
    return new ServiceUnavailable('the model cannot answer right now: nothing was saved; try again', 'generation_failed');
  }

  /** The assistant placeholder under `parent`, with the provenance of a started generation. */
  function placeholder(conversation: ConversationRecord, parent: MessageRecord, s: Started): MessageRecord {
    const provenance: JsonObject = {
      temperature: s.params.temperature,
      topK: s.params.topK,
      topP: s.params.topP,
      repetitionPenalty: s.params.repetitionPenalty,
      maxNewTokens: s.maxNewTokens,
      softPrompt: { source: s.personal.source ?? (s.personal.prefix ? 'personal' : 'none'), version: s.personal.sourceVersion ?? s.personal.version },
    };
    const message: MessageRecord = {
      id: randomUUID(),
      conversationId: conversation.id,
      parentId: parent.id,
      role: 'assistant',
      content: '',
      status: 'partial',
      finishReason: null,
      modelName: deps.modelName,
      userModelVersion: s.personal.version,
      sampling: provenance,
      seed: s.params.seed,
      createdAt: now(),
    };
    repos.conversations.insertMessage(message);
    return message;
  }

  /** Stores rows for generations already started; if that fails, they are stopped. */
  function storeOrAbort<T>(started: readonly Started[], store: () => T): T {
    try {
      return store();
    } catch (e) {
      for (const s of started) s.controller.abort();
      throw e;
    }
  }

  /** Streams the answer into the placeholder, checkpointing its text, and stores the result; never throws. */
  async function run(userId: string, p: Prepared, onDelta: (delta: string) => void): Promise<{ message: MessageRecord; error?: unknown }> {
    const { controller, stream } = p;
    active.set(p.message.id, { userId, controller });
    let text = '';
    let result: GenerationResult | null = null;
    let error: unknown;
    let storageError: unknown;
    // Checkpoints: one UPDATE of the row's text every CHECKPOINT_EVERY_DELTAS deltas or
    // CHECKPOINT_INTERVAL_MS, whichever first; a timer covers a stream that pauses.
    let savedLength = 0;
    let unsaved = 0;
    let lastSave = performance.now();
    let timer: NodeJS.Timeout | null = null;
    const checkpoint = () => {
      if (timer) clearTimeout(timer);
      timer = null;
      if (text.length === savedLength || storageError !== undefined) return;
      try {
        repos.conversations.checkpointMessage(p.message.id, text);
        savedLength = text.length;
        unsaved = 0;
        lastSave = performance.now();
      } catch (e) {
        // What is generated can no longer be kept: stop rather than stream an answer that is lost.
        storageError = e;
        controller.abort();
      }
    };
    try {
      for await (const delta of stream) {
        text += delta;
        onDelta(delta);
        unsaved++;
        const due = CHECKPOINT_INTERVAL_MS - (performance.now() - lastSave);
        if (unsaved >= CHECKPOINT_EVERY_DELTAS || due <= 0) checkpoint();
        else timer ??= setTimeout(checkpoint, due);
      }
      result = await stream.result;
    } catch (e) {
      error = e;
    } finally {
      if (timer) clearTimeout(timer);
      active.delete(p.message.id);
    }
    const aborted = controller.signal.aborted && storageError === undefined;
    // A failure on our side of the stream must not leave the sequence decoding in the batch.
    if (error !== undefined) controller.abort();
    if (storageError !== undefined) {
      logger.error({ err: storageError, messageId: p.message.id }, 'a streaming answer could not be saved');
      error = storageErrorOf(storageError) ?? storageError;
    } else if (error !== undefined && !aborted) {
      logger.error({ err: error, messageId: p.message.id }, 'generation failed');
      // The engine's own errors stay in the log; the client learns that the model failed, not how.
      error = new ServiceUnavailable('the model failed to answer: what was generated is kept; try again', 'generation_failed', { messageId: p.message.id });
    }
    const finishReason: FinishReason = storageError !== undefined ? 'error' : (result?.finishReason ?? (aborted ? 'abort' : 'error'));
    const finalText = result?.text ?? text;
    try {
      repos.conversations.finishMessage(p.message.id, finalText, statusOf(finishReason), finishReason);
      repos.conversations.touch(p.message.conversationId, now());
    } catch (e) {
      logger.error({ err: e, messageId: p.message.id }, 'a finished answer could not be saved');
      // The client still gets what it saw, and learns that it was not kept.
      return { message: { ...p.message, content: finalText, status: statusOf(finishReason), finishReason }, error: storageErrorOf(e) ?? e };
    }
    // Absent when the conversation was deleted meanwhile (the caller then answers not found).
    const message = repos.conversations.findMessage(p.message.id) ?? { ...p.message, content: finalText, status: statusOf(finishReason), finishReason };
    return error === undefined || aborted ? { message } : { message, error };
  }

  async function answer(userId: string, p: Prepared, conversation: ConversationRecord, hooks: ReplyHooks, started: { created: boolean; userMessage: MessageRecord | null }): Promise<ReplyOutcome> {
    hooks.onStart({ conversation, created: started.created, userMessage: started.userMessage, message: p.message });
    const { message, error } = await run(userId, p, (delta) => hooks.onDelta(delta, p.message));
    return { kind: 'reply', conversation: ownedConversation(userId, conversation.id), message, ...(error === undefined ? {} : { error }) };
  }

  /** Two candidates with different seeds under the same user message, streamed together. */
  async function answerPair(
    userId: string,
    pa: Prepared,
    pb: Prepared,
    conversation: ConversationRecord,
    userMessage: MessageRecord,
    comparison: ComparisonRecord,
    hooks: ReplyHooks,
    created: boolean,
  ): Promise<CompareOutcome> {
    hooks.onCompareStart({ conversation, created, userMessage, comparison, candidates: { A: pa.message, B: pb.message } });
    const runOne = async (p: Prepared, candidate: Candidate) => {
      const r = await run(userId, p, (delta) => hooks.onDelta(delta, p.message, candidate));
      hooks.onCandidateDone?.(r.message, candidate, r.error);
      return r.message;
    };
    const [A, B] = await Promise.all([runOne(pa, 'A'), runOne(pb, 'B')]);
    return { kind: 'compare', conversation: ownedConversation(userId, conversation.id), comparison, candidates: { A, B } };
  }

  /** The user's message and the answer's placeholder, together or not at all. */
  const storeTurn = db.transaction((plan: TurnPlan, content: string, started: Started) => {
    const userMessage = insertUserTurn(plan, content);
    return { userMessage, message: placeholder(plan.conversation, userMessage, started) };
  });

  const storeComparedTurn = db.transaction((userId: string, plan: TurnPlan, content: string, sa: Started, sb: Started) => {
    const userMessage = insertUserTurn(plan, content);
    const A = placeholder(plan.conversation, userMessage, sa);
    const B = placeholder(plan.conversation, userMessage, sb);
    const comparison: ComparisonRecord = { id: randomUUID(), userId, conversationId: plan.conversation.id, messageA: A.id, messageB: B.id, choice: null, createdAt: now(), decidedAt: null };
    repos.comparisons.insert(comparison);
    return { userMessage, A, B, comparison };
  });

  const chooseTx = db.transaction((userId: string, comparisonId: string, choice: ComparisonChoice): ChoiceOutcome => {
    const comparison = repos.comparisons.findForUser(comparisonId, userId);
    if (!comparison) throw new NotFound('no such comparison');
    if (comparison.choice !== null) throw new Conflict(`this comparison was already decided (${comparison.choice})`, 'already_decided', { choice: comparison.choice });
    const a = repos.conversations.findMessage(comparison.messageA);
    const b = repos.conversations.findMessage(comparison.messageB);
    // A comparison cascades with its candidates, so both are here; were one gone, so is the comparison.
    if (!a || !b) throw new NotFound('no such comparison');
    if (active.has(a.id) || active.has(b.id)) throw new Conflict('the candidates are still being generated', 'still_generating');
    repos.comparisons.decide(comparisonId, userId, choice, now());
    let preferencePairId: string | null = null;
    if (choice === 'A' || choice === 'B') {
      const [chosen, rejected] = choice === 'A' ? [a, b] : [b, a];
      preferencePairId = randomUUID();
      repos.preferencePairs.insert({
        id: preferencePairId,
        userId,
        prompt: promptFor(a.conversationId, a.parentId!).map((m) => ({ role: m.role, content: m.content })),
        chosen: chosen.content,
        rejected: rejected.content,
        source: 'ab',
        chosenMessage: chosen.id,
        rejectedMessage: rejected.id,
        createdAt: now(),
      });
    }
    repos.conversations.touch(a.conversationId, now());
    return { comparison: repos.comparisons.findForUser(comparisonId, userId)!, activeMessageId: choice === 'B' ? b.id : a.id, preferencePairId };
  });

  return {
    /**
     * A user turn: creates the conversation when no id is given (titled from the first words),
     * stores the user message at the end of the active path and streams the answer.
     */
    async send(userId: string, input: SendInput, hooks: ReplyHooks): Promise<ReplyOutcome | CompareOutcome> {
      if (input.content.length > config.maxMessageChars) {
        throw new PayloadTooLarge(`the message is longer than the ${config.maxMessageChars} characters allowed`, { limitChars: config.maxMessageChars, chars: input.content.length });
      }
      const plan = planTurn(userId, input);
      const messages: ChatMessage[] = [...(plan.parent ? promptFor(plan.conversation.id, plan.parent.id) : []), { role: 'user', content: input.content }];
      const compare = input.compare ?? (config.abFraction > 0 && Math.random() < config.abFraction);
      if (compare) {
        const seedA = input.sampling?.seed ?? randomInt(0, 0x1_0000_0000);
        // A given seed makes both reproducible; B's is the next one.
        const seedB = (seedA + 1) % 0x1_0000_0000;
        const sa = start(userId, messages, input.sampling, seedA);
        const sb = storeOrAbort([sa], () => start(userId, messages, input.sampling, seedB));
        const stored = storeOrAbort([sa, sb], () => storeComparedTurn(userId, plan, input.content, sa, sb));
        return answerPair(userId, { ...sa, message: stored.A }, { ...sb, message: stored.B }, plan.conversation, stored.userMessage, stored.comparison, hooks, plan.created);
      }
      const started = start(userId, messages, input.sampling);
      const stored = storeOrAbort([started], () => storeTurn(plan, input.content, started));
      return answer(userId, { ...started, message: stored.message }, plan.conversation, hooks, { created: plan.created, userMessage: stored.userMessage });
    },

    /** A new answer beside `messageId` (an assistant message), or a further answer to a user message. */
    async regenerate(userId: string, input: { messageId: string; sampling?: SamplingInput }, hooks: ReplyHooks): Promise<ReplyOutcome> {
      const { conversation, message } = ownedMessage(userId, input.messageId);
      const parent = message.role === 'user' ? message : message.parentId === null ? undefined : repos.conversations.findMessage(message.parentId);
      if (!parent || parent.role !== 'user') throw new Conflict('only an answer to a user message can be regenerated', 'not_regenerable');
      const started = start(userId, promptFor(conversation.id, parent.id), input.sampling);
      const answerRow = storeOrAbort([started], () => placeholder(conversation, parent, started));
      return answer(userId, { ...started, message: answerRow }, conversation, hooks, { created: false, userMessage: null });
    },

    /** Stops a generation in flight; what was generated so far is kept (status partial). */
    abort(userId: string, messageId: string): void {
      const running = active.get(messageId);
      if (running && running.userId === userId) {
        running.controller.abort();
        return;
      }
      ownedMessage(userId, messageId);
      throw new Conflict('this message is not being generated', 'not_generating');
    },

    /**
     * Records the user's pick between the candidates of an A/B comparison. 'A' or 'B' stores a
     * preference pair (source 'ab'); the chosen answer (A on a tie or both bad) continues the conversation.
     */
    choose(userId: string, input: { comparisonId: string; choice: ComparisonChoice }): ChoiceOutcome {
      const outcome = chooseTx(userId, input.comparisonId, input.choice);
      metrics.feedback('comparison', input.choice);
      return outcome;
    },

    /** Whether a generation is in flight (tests, shutdown). */
    isGenerating: (messageId: string): boolean => active.has(messageId),

    /** The prompt a new answer under `leafId` would see. */
    promptFor,
  };
}
