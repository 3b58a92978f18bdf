// The engine: a model runtime, its tokenizer and the continuous-batching scheduler, behind one
// `generate` call that takes text or chat messages and streams text deltas.
import path from 'node:path';
import { LmError } from './errors.ts';
import { type ModelConfig, loadModelConfig } from './model-config.ts';
import { ModelRuntime } from './runtime.ts';
import { type GenerationResult, type GenerationStream, Scheduler } from './scheduler.ts';
import type { SamplingParams } from './sampling.ts';
import { type ChatMessage, type ChatTokenizer, loadTokenizer } from './tokenizer.ts';

export interface GenerateOptions {
  /** Raw text prompt, or chat messages formatted with the model's chat template. */
  prompt?: string;
  messages?: ChatMessage[];
  prefix?: Float32Array | null;
  sampling: SamplingParams;
  maxNewTokens: number;
  stop?: string[];
  signal?: AbortSignal;
  ignoreEos?: boolean;
  /**
   * With `messages`: drop the oldest turns (after any leading system messages; never the last
   * message) until the prompt leaves room for min(maxNewTokens, a quarter of the context) new tokens.
   * If the last message alone cannot leave that room: LmError 'context_length_exceeded' (details:
   * promptTokens, maxPromptTokens, contextTokens, reservedTokens, prefixTokens), thrown before
   * anything is queued. Without it, a prompt longer than the context is an error.
   */
  fitContext?: boolean;
}

/** Every id the tokenizer can produce must have a row in the embedding, or the first prompt fails. */
function checkTokenizerFitsModel(tokenizer: ChatTokenizer, config: ModelConfig, dir: string): void {
  const where = path.join(dir, 'tokenizer.json');
  if (tokenizer.vocabSize > config.vocabSize) {
    throw new LmError('config_invalid', `${where} has ${tokenizer.vocabSize} tokens but config.json's vocab_size is ${config.vocabSize}: the tokenizer does not belong to this model`, {
      file: where, tokenizerVocab: tokenizer.vocabSize, vocabSize: config.vocabSize,
    });
  }
  const outside = [...tokenizer.eosTokenIds, ...(tokenizer.bosTokenId === null ? [] : [tokenizer.bosTokenId])].filter((id) => id >= config.vocabSize);
  if (outside.length) {
    throw new LmError('config_invalid', `${dir}: special token ids ${outside.join(', ')} are outside the model's vocabulary of ${config.vocabSize}`, { file: dir, ids: outside });
  }
}

export class Engine {
  private constructor(
    readonly runtime: ModelRuntime,
    readonly tokenizer: ChatTokenizer,
    readonly scheduler: Scheduler,
  ) {}

  /**
   * Loads and checks the whole model directory: config, tokenizer (and that its ids fit the
   * embedding), then every weight's name, shape, dtype and values (NaN/Inf), cheapest checks first.
   */
  static async load(dir: string, opts: { threads?: number; maxBatch?: number } = {}): Promise<Engine> {
    const config = loadModelConfig(dir);
    const tokenizer = loadTokenizer(dir, { extraEosTokenIds: config.eosTokenIds });
    checkTokenizerFitsModel(tokenizer, config, dir);
    const runtime = await ModelRuntime.load(dir, { threads: opts.threads });
    return new Engine(runtime, tokenizer, new Scheduler(runtime, tokenizer, { maxBatch: opts.maxBatch ?? 32 }));
  }

  /** Token ids of the prompt: the chat template over messages, or the raw text. */
  encodePrompt(opts: Pick<GenerateOptions, 'prompt' | 'messages'>): number[] {
    if (opts.messages) return this.tokenizer.encodeChat(opts.messages, { addGenerationPrompt: true });
    if (opts.prompt !== undefined) return this.tokenizer.encode(opts.prompt, { addSpecialTokens: true });
    throw new LmError('bad_argument', 'give a prompt or messages');
  }

  /** The latest turns of `messages` whose prompt fits `budget` tokens (see GenerateOptions.fitContext). */
  fitMessages(messages: ChatMessage[], budget: number): { messages: ChatMessage[]; ids: number[] } {
    let kept = messages;
    let ids = this.encodePrompt({ messages: kept });
    const system = messages.findIndex((m) => m.role !== 'system');
    const head = system < 0 ? messages.length : system;
    // Drop the oldest non-system message, one at a time, until the rest fits (or only the last is left).
    for (let drop = 1; ids.length > budget && head + drop < messages.length; drop++) {
      kept = [...messages.slice(0, head), ...messages.slice(head + drop)];
      ids = this.encodePrompt({ messages: kept });
    }
    return { messages: kept, ids };
  }

  generate(opts: GenerateOptions): GenerationStream {
    let promptIds: number[];
    if (opts.fitContext && opts.messages) {
      const prefixRows = opts.prefix ? opts.prefix.length / this.runtime.config.hidden : 0;
      const max = this.runtime.maxContext;
      const reserved = Math.min(opts.maxNewTokens, Math.floor(max / 4));
      const budget = max - prefixRows - reserved;
      promptIds = this.fitMessages(opts.messages, budget).ids;
      if (promptIds.length > budget) {
        throw new LmError('context_length_exceeded', `the prompt needs ${promptIds.length} tokens even with only its last message, but the context of ${max} tokens holds ${budget} once ${reserved} are kept for the answer`, {
          promptTokens: promptIds.length, maxPromptTokens: budget, contextTokens: max, reservedTokens: reserved, prefixTokens: prefixRows,
        });
      }
    } else {
      promptIds = this.encodePrompt(opts);
    }
    return this.scheduler.submit({
      promptIds,
      prefix: opts.prefix ?? null,
      sampling: opts.sampling,
      maxNewTokens: opts.maxNewTokens,
      // The fallback chat template's end-of-turn marker may come out as plain text.
      stop: [...(opts.stop ?? []), ...(opts.messages ? this.tokenizer.stopStrings : [])],
      signal: opts.signal,
      ignoreEos: opts.ignoreEos,
    });
  }

  async generateText(opts: GenerateOptions): Promise<GenerationResult> {
    return this.generate(opts).result;
  }

  async close(): Promise<void> {
    await this.scheduler.close();
    await this.runtime.release();
  }
}
