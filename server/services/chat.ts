// Chat turns: store the user's message, build the prompt from the conversation's active path (the
// chat template over the history), stream the assistant's answer from the engine and store it with
// its provenance. Regeneration adds a sibling answer under the same user message.
//
// The assistant message is inserted before the first token (status 'partial', empty content), so a
// client learns its id at once (to abort it) and a crash mid-stream leaves a partial row, not nothing.
// Transports (socket.io) pass callbacks; nothing here knows about sockets.
import { randomInt, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { ComparisonChoice, ComparisonRecord } from '../db/comparisons.ts';

export { COMPARISON_CHOICES, type ComparisonChoice } from '../db/comparisons.ts';
import type { ConversationRecord, MessageRecord, MessageStatus } from '../db/conversations.ts';
import type { JsonObject } from '../db/json.ts';
import { Conflict, NotFound, PayloadTooLarge, ServiceUnavailable } from '../errors.ts';
import type { GenerateOptions } from '../lm/generate.ts';
import type { FinishReason, GenerationResult, GenerationStream } from '../lm/scheduler.ts';
import { SAMPLING_LIMITS, type SamplingParams } from '../lm/sampling.ts';
import type { ChatMessage } from '../lm/tokenizer.ts';
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
  /** Provenance: which base model answered (e.g. the model directory's name). */
  modelId: string;
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

  const insertUserTurn = db.transaction((userId: string, input: SendInput): { conversation: ConversationRecord; created: boolean; userMessage: MessageRecord } => {
    const t = now();
    let conversation: ConversationRecord;
    let created = false;
    let parentId: string | null = null;
    if (input.conversationId === undefined) {
      conversation = { id: randomUUID(), userId, title: titleFrom(input.content), createdAt: t, updatedAt: t };
      repos.conversations.insert(conversation);
      created = true;
    } else {
      conversation = ownedConversation(userId, input.conversationId);
      parentId = activeLeaf(conversation.id)?.id ?? null;
    }
    const userMessage: MessageRecord = {
      id: randomUUID(),
      conversationId: conversation.id,
      parentId,
      role: 'user',
      content: input.content,
      status: 'complete',
      finishReason: null,
      modelId: null,
      userModelVersion: null,
      sampling: null,
      seed: null,
      createdAt: t,
    };
    repos.conversations.insertMessage(userMessage);
    repos.conversations.touch(conversation.id, t);
    return { conversation, created, userMessage };
  });

  interface Prepared {
    message: MessageRecord;
    messages: ChatMessage[];
    params: SamplingParams;
    maxNewTokens: number;
    prefix: Float32Array | null;
  }

  /** Inserts the assistant placeholder under `parent` with its provenance. */
  function prepare(conversation: ConversationRecord, parent: MessageRecord, sampling: SamplingInput | undefined, seed?: number): Prepared {
    const { params, maxNewTokens } = resolveSampling(seed === undefined ? sampling : { ...sampling, seed });
    // Read once: a version published mid-reply does not change this reply's soft prompt.
    const personal = deps.userModels?.prefixFor(conversation.userId) ?? { prefix: null, version: null };
    const provenance: JsonObject = {
      temperature: params.temperature,
      topK: params.topK,
      topP: params.topP,
      repetitionPenalty: params.repetitionPenalty,
      maxNewTokens,
      softPrompt: { source: personal.source ?? (personal.prefix ? 'personal' : 'none'), version: personal.sourceVersion ?? personal.version },
    };
    const message: MessageRecord = {
      id: randomUUID(),
      conversationId: conversation.id,
      parentId: parent.id,
      role: 'assistant',
      content: '',
      status: 'partial',
      finishReason: null,
      modelId: deps.modelId,
      userModelVersion: personal.version,
      sampling: provenance,
      seed: params.seed,
      createdAt: now(),
    };
    repos.conversations.insertMessage(message);
    return { message, messages: promptFor(conversation.id, parent.id), params, maxNewTokens, prefix: personal.prefix };
  }

  /** Streams the answer into the placeholder and stores the result; never throws. */
  async function run(userId: string, p: Prepared, onDelta: (delta: string) => void): Promise<{ message: MessageRecord; error?: unknown }> {
    const controller = new AbortController();
    active.set(p.message.id, { userId, controller });
    let text = '';
    let result: GenerationResult | null = null;
    let error: unknown;
    try {
      // A long conversation keeps its latest turns that fit the context (the stored history stays whole).
      const stream = deps.engine.generate({ messages: p.messages, prefix: p.prefix ?? undefined, sampling: p.params, maxNewTokens: p.maxNewTokens, signal: controller.signal, fitContext: true });
      for await (const delta of stream) {
        text += delta;
        onDelta(delta);
      }
      result = await stream.result;
    } catch (e) {
      error = e;
    } finally {
      active.delete(p.message.id);
    }
    const aborted = controller.signal.aborted;
    // A failure on our side of the stream must not leave the sequence decoding in the batch.
    if (error !== undefined) controller.abort();
    if (error !== undefined && !aborted) {
      logger.error({ err: error, messageId: p.message.id }, 'generation failed');
      // The engine's own errors stay in the log; the client learns that the model failed, not how.
      error = new ServiceUnavailable('the model failed to answer: what was generated is kept; try again', 'generation_failed', { messageId: p.message.id });
    }
    const finishReason: FinishReason = result?.finishReason ?? (aborted ? 'abort' : 'error');
    repos.conversations.finishMessage(p.message.id, result?.text ?? text, statusOf(finishReason), finishReason);
    repos.conversations.touch(p.message.conversationId, now());
    const message = repos.conversations.findMessage(p.message.id)!;
    return error === undefined || aborted ? { message } : { message, error };
  }

  async function answer(
    userId: string,
    conversation: ConversationRecord,
    parent: MessageRecord,
    sampling: SamplingInput | undefined,
    hooks: ReplyHooks,
    started: { created: boolean; userMessage: MessageRecord | null },
  ): Promise<ReplyOutcome> {
    const p = prepare(conversation, parent, sampling);
    hooks.onStart({ conversation, created: started.created, userMessage: started.userMessage, message: p.message });
    const { message, error } = await run(userId, p, (delta) => hooks.onDelta(delta, p.message));
    return { kind: 'reply', conversation: ownedConversation(userId, conversation.id), message, ...(error === undefined ? {} : { error }) };
  }

  /** Two candidates with different seeds under the same user message, streamed together. */
  async function answerPair(
    userId: string,
    conversation: ConversationRecord,
    userMessage: MessageRecord,
    sampling: SamplingInput | undefined,
    hooks: ReplyHooks,
    created: boolean,
  ): Promise<CompareOutcome> {
    const seedA = sampling?.seed ?? randomInt(0, 0x1_0000_0000);
    // A given seed makes both reproducible; B's is the next one.
    const seedB = (seedA + 1) % 0x1_0000_0000;
    const pa = prepare(conversation, userMessage, sampling, seedA);
    const pb = prepare(conversation, userMessage, sampling, seedB);
    const comparison: ComparisonRecord = { id: randomUUID(), userId, conversationId: conversation.id, messageA: pa.message.id, messageB: pb.message.id, choice: null, createdAt: now(), decidedAt: null };
    repos.comparisons.insert(comparison);
    hooks.onCompareStart({ conversation, created, userMessage, comparison, candidates: { A: pa.message, B: pb.message } });
    const runOne = async (p: Prepared, candidate: Candidate) => {
      const r = await run(userId, p, (delta) => hooks.onDelta(delta, p.message, candidate));
      hooks.onCandidateDone?.(r.message, candidate, r.error);
      return r.message;
    };
    const [A, B] = await Promise.all([runOne(pa, 'A'), runOne(pb, 'B')]);
    return { kind: 'compare', conversation: ownedConversation(userId, conversation.id), comparison, candidates: { A, B } };
  }

  const chooseTx = db.transaction((userId: string, comparisonId: string, choice: ComparisonChoice): ChoiceOutcome => {
    const comparison = repos.comparisons.findForUser(comparisonId, userId);
    if (!comparison) throw new NotFound('no such comparison');
    if (comparison.choice !== null) throw new Conflict(`this comparison was already decided (${comparison.choice})`, 'already_decided', { choice: comparison.choice });
    const a = repos.conversations.findMessage(comparison.messageA)!;
    const b = repos.conversations.findMessage(comparison.messageB)!;
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
      const turn = insertUserTurn(userId, input);
      const compare = input.compare ?? (config.abFraction > 0 && Math.random() < config.abFraction);
      if (compare) return answerPair(userId, turn.conversation, turn.userMessage, input.sampling, hooks, turn.created);
      return answer(userId, turn.conversation, turn.userMessage, input.sampling, hooks, { created: turn.created, userMessage: turn.userMessage });
    },

    /** A new answer beside `messageId` (an assistant message), or a further answer to a user message. */
    async regenerate(userId: string, input: { messageId: string; sampling?: SamplingInput }, hooks: ReplyHooks): Promise<ReplyOutcome> {
      const { conversation, message } = ownedMessage(userId, input.messageId);
      const parent = message.role === 'user' ? message : message.parentId === null ? undefined : repos.conversations.findMessage(message.parentId);
      if (!parent || parent.role !== 'user') throw new Conflict('only an answer to a user message can be regenerated', 'not_regenerable');
      return answer(userId, conversation, parent, input.sampling, hooks, { created: false, userMessage: null });
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
