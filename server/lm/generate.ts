// The engine: a model runtime, its tokenizer and the continuous-batching scheduler, behind one
// `generate` call that takes text or chat messages and streams text deltas.
import { LmError } from './errors.ts';
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
}

export class Engine {
  private constructor(
    readonly runtime: ModelRuntime,
    readonly tokenizer: ChatTokenizer,
    readonly scheduler: Scheduler,
  ) {}

  static async load(dir: string, opts: { threads?: number; maxBatch?: number } = {}): Promise<Engine> {
    const runtime = await ModelRuntime.load(dir, { threads: opts.threads });
    const tokenizer = loadTokenizer(dir, { extraEosTokenIds: runtime.config.eosTokenIds });
    return new Engine(runtime, tokenizer, new Scheduler(runtime, tokenizer, { maxBatch: opts.maxBatch ?? 32 }));
  }

  /** Token ids of the prompt: the chat template over messages, or the raw text. */
  encodePrompt(opts: Pick<GenerateOptions, 'prompt' | 'messages'>): number[] {
    if (opts.messages) return this.tokenizer.encodeChat(opts.messages, { addGenerationPrompt: true });
    if (opts.prompt !== undefined) return this.tokenizer.encode(opts.prompt, { addSpecialTokens: true });
    throw new LmError('bad_argument', 'give a prompt or messages');
  }

  generate(opts: GenerateOptions): GenerationStream {
    return this.scheduler.submit({
      promptIds: this.encodePrompt(opts),
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
