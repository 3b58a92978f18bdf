// OpenAI-style chat completions: a list of messages in, one answer out (streamed or whole), generated
// with the caller's soft prompt, exactly as a chat turn over socket.io. Nothing is stored: the caller
// keeps the conversation, as with OpenAI's API. The request schema follows OpenAI's field names so
// that the HTTP layer can pass the body straight in; unsupported features are refused by name.
import { randomBytes, randomInt } from 'node:crypto';
import { z } from 'zod';
import { NotFound, ServiceUnavailable, ValidationError } from '../errors.ts';
import { CONTEXT_LENGTH_EXCEEDED, ENGINE_CLOSED, isLmError } from '../lm/errors.ts';
import type { GenerationResult, GenerationStream } from '../lm/scheduler.ts';
import { SAMPLING_LIMITS, type SamplingParams } from '../lm/sampling.ts';
import { type ChatMessage, isChatTemplateRefusal } from '../lm/tokenizer.ts';
import type { ChatDeps } from './chat.ts';
import type { ServiceContext } from './context.ts';

const MAX_MESSAGES = 1000;
const MAX_STOP = 4;

const textPart = z.object({ type: z.literal('text', { error: 'only text content parts are supported' }), text: z.string() });
const content = z.union([z.string(), z.array(textPart).min(1)], { error: 'content must be a string or a list of text parts' });

const messageSchema = z.object({
  // "developer" is OpenAI's newer name for the system message.
  role: z.enum(['system', 'developer', 'user', 'assistant'], { error: 'role must be system, developer, user or assistant (tools are not supported)' }),
  content,
  name: z.string().optional(),
});

const bounded = (field: string, min: number, max: number) =>
  z.number({ error: `${field} must be a number` }).min(min, `${field} must be at least ${min}`).max(max, `${field} must be at most ${max}`);

/** The request body of POST /v1/chat/completions (unknown fields are ignored, as OpenAI clients send many). */
export const chatCompletionRequestSchema = z
  .object({
    model: z.string({ error: 'model is required' }).min(1, 'model is required'),
    messages: z.array(messageSchema, { error: 'messages must be a list' }).min(1, 'messages must not be empty').max(MAX_MESSAGES),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
    temperature: bounded('temperature', SAMPLING_LIMITS.temperature.min, SAMPLING_LIMITS.temperature.max).nullish(),
    top_p: bounded('top_p', SAMPLING_LIMITS.topP.min, SAMPLING_LIMITS.topP.max).nullish(),
    max_tokens: z.number().int('max_tokens must be an integer').min(1, 'max_tokens must be at least 1').nullish(),
    max_completion_tokens: z.number().int('max_completion_tokens must be an integer').min(1, 'max_completion_tokens must be at least 1').nullish(),
    seed: z.number().int('seed must be an integer').nullish(),
    stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(MAX_STOP, `stop takes at most ${MAX_STOP} strings`)], { error: 'stop must be a string or a list of strings' }).nullish(),
    n: z.number().int('n must be an integer').min(1, 'n must be at least 1').max(1, 'n must be 1: one choice per request').nullish(),
    frequency_penalty: bounded('frequency_penalty', -2, 2).nullish(),
    presence_penalty: bounded('presence_penalty', -2, 2).nullish(),
    user: z.string().nullish(),
    logprobs: z.literal(false, { error: 'logprobs are not supported' }).nullish(),
    tools: z.array(z.unknown()).max(0, 'tools are not supported').nullish(),
    response_format: z.object({ type: z.literal('text', { error: 'only text responses are supported' }) }).nullish(),
  });
export type ChatCompletionRequest = z.output<typeof chatCompletionRequestSchema>;

export type CompletionFinishReason = 'stop' | 'length';

export interface StartedCompletion {
  id: string;
  created: number;
  model: string;
  /** The user-model version that personalized it (null: generic). */
  userModelVersion: string | null;
  stream: GenerationStream;
}

export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ModelInfo {
  id: string;
  created: number;
}

/** Maps the engine's finish reasons onto OpenAI's. */
export const openAiFinishReason = (r: GenerationResult['finishReason']): CompletionFinishReason => (r === 'length' ? 'length' : 'stop');

export const usageOf = (r: GenerationResult): CompletionUsage => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.tokenIds.length,
  total_tokens: r.promptTokens + r.tokenIds.length,
});

export type CompletionService = ReturnType<typeof createCompletionService>;

export function createCompletionService(ctx: ServiceContext, deps: ChatDeps) {
  const { config, now } = ctx;
  const startedAt = Math.floor(now() / 1000);

  const textOf = (c: z.output<typeof content>): string => (typeof c === 'string' ? c : c.map((p) => p.text).join(''));

  /** Why the engine would not take these messages, for the client: their fault (400) or a pause (503). */
  function refusalOf(e: unknown): unknown {
    if (isChatTemplateRefusal(e)) {
      // Not a length problem: the model's own template refuses this conversation (e.g. roles must alternate).
      const why = typeof e.details?.templateMessage === 'string' ? e.details.templateMessage : e.message;
      return new ValidationError(`the model's chat template rejects these messages: ${why}`, { param: 'messages' }, 'prompt_rejected');
    }
    if (isLmError(e, 'context_length_exceeded') || (isLmError(e, 'bad_argument') && e.details?.reason === CONTEXT_LENGTH_EXCEEDED)) {
      return new ValidationError(`the messages do not fit the model: ${e.message}`, { param: 'messages' }, 'context_length_exceeded');
    }
    if (isLmError(e, 'bad_argument') && e.details?.reason === ENGINE_CLOSED) return new ServiceUnavailable('the server is shutting down; try again shortly', 'unavailable');
    if (isLmError(e, 'bad_argument')) return new ValidationError(`the model cannot take these messages: ${e.message}`, { param: 'messages' }, 'prompt_rejected');
    return e;
  }

  function checkModel(model: string): void {
    if (model !== deps.modelName) throw new NotFound(`the model "${model}" does not exist: this server serves "${deps.modelName}" (GET /v1/models)`, 'model_not_found', { param: 'model' });
  }

  return {
    models: (): ModelInfo[] => [{ id: deps.modelName, created: startedAt }],

    /**
     * Starts the generation; the caller iterates `stream` (or awaits `stream.result`) and aborts
     * through `signal` when its client goes away.
     */
    start(userId: string, input: ChatCompletionRequest, signal: AbortSignal): StartedCompletion {
      checkModel(input.model);
      const messages: ChatMessage[] = input.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: textOf(m.content) }));
      const chars = messages.reduce((a, m) => a + m.content.length, 0);
      if (chars > config.maxMessageChars * 4) {
        throw new ValidationError(`the messages hold ${chars} characters, more than the ${config.maxMessageChars * 4} allowed`, { param: 'messages', limitChars: config.maxMessageChars * 4 }, 'context_length_exceeded');
      }
      const sampling: SamplingParams = {
        temperature: input.temperature ?? config.temperature,
        topK: 0,
        topP: input.top_p ?? config.topP,
        repetitionPenalty: 1,
        // OpenAI seeds are any integer; the engine's are uint32.
        seed: input.seed == null ? randomInt(0, 0x1_0000_0000) : ((input.seed % 0x1_0000_0000) + 0x1_0000_0000) % 0x1_0000_0000,
      };
      const maxNewTokens = Math.min(input.max_completion_tokens ?? input.max_tokens ?? config.maxNewTokens, config.maxNewTokens);
      const stop = input.stop == null ? [] : typeof input.stop === 'string' ? [input.stop] : input.stop;
      // Read once, as for a chat turn: a version published mid-answer does not change this answer.
      const personal = deps.userModels?.prefixFor(userId) ?? { prefix: null, version: null };
      let stream: GenerationStream;
      try {
        stream = deps.engine.generate({ messages, prefix: personal.prefix, sampling, maxNewTokens, stop, signal });
      } catch (e) {
        throw refusalOf(e);
      }
      return { id: `chatcmpl-${randomBytes(12).toString('base64url')}`, created: Math.floor(now() / 1000), model: deps.modelName, userModelVersion: personal.version, stream };
    },
  };
}
