// `npm run bench -- engine [--json] [--quick]`: prefill, decode at 1/8/32 streams, scoring and RSS on
// a random-weight GPT-2-small-shaped model (124M parameters) and on the default model when present.
// Every figure is printed beside the machine's own limit measured in this run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomModel } from '../sandbox/random-model.ts';
import { ModelRuntime } from '../server/lm/runtime.ts';
import { Scheduler } from '../server/lm/scheduler.ts';
import { loadTokenizer } from '../server/lm/tokenizer.ts';
import { memoryBandwidthGBs, peakMatmulGflops } from './limits.ts';

const progress = (msg: string): void => void process.stderr.write(`[bench engine] ${msg}\n`);

export interface Figure {
  value: number;
  unit: string;
  limit: number | null;
  ratio: number | null;
  note?: string;
}

function fig(value: number, unit: string, limit: number | null, note?: string): Figure {
  return { value, unit, limit, ratio: limit ? value / limit : null, ...(note ? { note } : {}) };
}

function weightBytes(rt: ModelRuntime): { total: number; perDecodeStep: number } {
  let total = 0;
  let gatherOnly = 0;
  for (const [name, shape] of rt.files.weights.shapes) {
    const b = shape.reduce((a, d) => a * d, 1) * 4;
    total += b;
    // Position tables, and untied input embeddings, are gathered row by row, not streamed.
    if (name === 'wpe.weight' || (!rt.config.tieWordEmbeddings && /(^|\.)(wte|embed_tokens)\.weight$/.test(name))) gatherOnly += b;
  }
  return { total, perDecodeStep: total - gatherOnly };
}

/** Matmul FLOPs per token: 2 × the non-embedding weights, plus the lm_head where logits are taken. */
function flopsPerToken(rt: ModelRuntime, withLmHead: boolean): number {
  let params = 0;
  for (const [name, shape] of rt.files.weights.shapes) {
    if (/(wte|wpe|embed_tokens)\.weight$/.test(name) || name === 'lm_head.weight') continue;
    params += shape.reduce((a, d) => a * d, 1);
  }
  if (withLmHead) params += rt.config.vocabSize * rt.config.hidden;
  return 2 * params;
}

const DECODE_ROUNDS = 3;

async function decodeTokensPerSecond(rt: ModelRuntime, dir: string, streams: number, newTokens: number, promptLen: number): Promise<number> {
  const tok = loadTokenizer(dir, { extraEosTokenIds: rt.config.eosTokenIds });
  const sched = new Scheduler(rt, tok, { maxBatch: streams });
  const V = rt.config.vocabSize;
  const reqs = [...Array(streams).keys()].map((i) => ({
    promptIds: [...Array(promptLen).keys()].map((t) => (i * 7919 + t * 104729) % V),
    prefix: null,
    sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: i },
    maxNewTokens: newTokens,
    ignoreEos: true,
  }));
  // Warm up, then time only once every stream is decoding (prefill excluded).
  await sched.submit({ ...reqs[0]!, maxNewTokens: 2 }).result;
  const t0 = performance.now();
  const results = await Promise.all(reqs.map((r) => sched.submit(r).result));
  const elapsed = (performance.now() - t0) / 1000;
  const firstTokenAvg = results.reduce((s, r) => s + (r.timeToFirstTokenMs ?? 0), 0) / results.length / 1000;
  const tokens = results.reduce((s, r) => s + r.tokenIds.length - 1, 0);
  await sched.close();
  return tokens / Math.max(1e-9, elapsed - firstTokenAvg);
}

async function prefillTokensPerSecond(rt: ModelRuntime, len: number): Promise<number> {
  const ids = [...Array(len).keys()].map((t) => (t * 31) % rt.config.vocabSize);
  await rt.logits(ids.slice(0, 16));
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await rt.logits(ids.slice(0, len - 1).concat([1])).then(() => undefined);
    best = Math.min(best, performance.now() - t0);
  }
  return len / (best / 1000);
}

async function scoreTimes(rt: ModelRuntime, len: number, P = 10): Promise<{ forward: number; forwardBackward: number }> {
  const H = rt.config.hidden;
  const row = { prefix: new Float32Array(P * H).fill(0.01), ids: [...Array(len).keys()].map((t) => (t * 13) % rt.config.vocabSize), from: len / 2 };
  const time = async (grad: boolean): Promise<number> => {
    await rt.openScorer(grad);
    await rt.score([row], { gradPrefix: grad });
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await rt.score([row], { gradPrefix: grad });
      best = Math.min(best, performance.now() - t0);
    }
    await rt.closeScorer();
    return best / 1000;
  };
  const forward = await time(false);
  const forwardBackward = await time(true);
  return { forward, forwardBackward };
}

/** RSS of a fresh process that loads the serving session and decodes a few tokens. */
function servingRssBytes(dir: string): number {
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(import.meta.dirname, 'rss-child.ts'), dir], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(`rss child failed: ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!).rss;
}

export async function benchModel(name: string, dir: string, limits: { gflops: number; bandwidth: number }, quick: boolean) {
  progress(`${name}: loading`);
  const rt = await ModelRuntime.load(dir);
  const bytes = weightBytes(rt);
  const decodeBound = (limits.bandwidth * 1e9) / bytes.perDecodeStep;
  const prefillFlops = flopsPerToken(rt, false); // logits only at the last position
  const decodeFlops = flopsPerToken(rt, true);
  const scoreFlops = flopsPerToken(rt, true); // logits at every position
  const prefillLen = Math.min(quick ? 128 : 512, rt.maxContext);
  progress(`${name}: prefill ${prefillLen} tokens`);
  const prefill = await prefillTokensPerSecond(rt, prefillLen);
  const decode: Record<string, Figure> = {};
  const newTokens = quick ? 16 : 48;
  // Best of DECODE_ROUNDS rounds, the stream counts interleaved within each round: this shared
  // machine's speed drifts by ±20% over minutes, and interleaving lets the drift hit every stream
  // count alike instead of skewing the 32 ÷ 1 ratio. Prefill and scoring are best of 3 as well.
  const best = new Map<number, number>();
  const rounds = quick ? 1 : DECODE_ROUNDS;
  for (let round = 1; round <= rounds; round++) {
    for (const streams of [1, 8, 32]) {
      progress(`${name}: decode at ${streams} stream(s), round ${round} of ${rounds}`);
      const tps = await decodeTokensPerSecond(rt, dir, streams, newTokens, 16);
      best.set(streams, Math.max(best.get(streams) ?? 0, tps));
    }
  }
  for (const [streams, tps] of best) {
    // Each step reads every streamed weight once, whatever the batch: the bound scales with streams until compute binds.
    decode[`streams_${streams}`] = fig(tps, 'tokens/s', streams === 1 ? decodeBound : Math.min(streams * decodeBound, (limits.gflops * 1e9) / decodeFlops),
      streams === 1 ? 'limit: bandwidth / weight bytes read per step' : 'limit: min(streams × bandwidth bound, peak FLOP/s / FLOPs per token)');
  }
  const scoreLen = Math.min(256, rt.maxContext - 10);
  progress(`${name}: score ${scoreLen}-token row`);
  const sc = await scoreTimes(rt, scoreLen);
  await rt.release();
  progress(`${name}: serving RSS`);
  const rss = servingRssBytes(dir);
  const d1 = decode['streams_1']!.value;
  return {
    model: name,
    parameters: bytes.total / 4,
    weight_bytes: bytes.total,
    prefill: fig(prefill, 'tokens/s', (limits.gflops * 1e9) / prefillFlops, `limit: peak matmul FLOP/s / ${(prefillFlops / 1e6).toFixed(0)} MFLOP per token`),
    decode,
    decode_32_over_1: fig(decode['streams_32']!.value / d1, '×', 10, 'target ≥ 10×'),
    score_forward_s: fig(sc.forward, 's per row', null, `${scoreLen} tokens + 10 prefix rows`),
    // Backward w.r.t. the prefix needs activation gradients only (dX = dY·Wᵀ): about the forward's FLOPs again.
    score_forward_backward_tokens_per_s: fig((scoreLen + 10) / sc.forwardBackward, 'tokens/s', (limits.gflops * 1e9) / (2 * scoreFlops),
      'limit: peak FLOP/s / (2 × forward FLOPs per token, lm_head at every position)'),
    score_forward_backward_s: fig(sc.forwardBackward, 's per row', null, `${scoreLen} tokens + 10 prefix rows`),
    score_backward_over_forward: fig(sc.forwardBackward / sc.forward, '×', 4, 'target ≤ 4×'),
    serving_rss_bytes: fig(rss, 'bytes', 2 * bytes.total + 300 * 1024 ** 2, 'target ≤ 2 × weight bytes + 300 MB'),
  };
}

export async function runEngineBench(args: string[]): Promise<unknown> {
  const quick = args.includes('--quick');
  progress('measuring the machine: peak matmul GFLOP/s, memory bandwidth');
  const gflops = await peakMatmulGflops();
  const bandwidth = await memoryBandwidthGBs();
  const limits = { gflops, bandwidth };
  const models: unknown[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-bench-'));
  try {
    progress('writing a random GPT-2-small-shaped model (124M)');
    const gpt2Dir = path.join(tmp, 'gpt2-124m');
    writeRandomModel(gpt2Dir, { modelType: 'gpt2', vocabSize: 50257, hidden: 768, layers: 12, heads: 12, maxPositions: 1024, tie: true, seed: 1 });
    models.push(await benchModel('random gpt2-124M', gpt2Dir, limits, quick));
    const def = path.resolve('models/default');
    if (fs.existsSync(path.join(def, 'config.json'))) models.push(await benchModel('default', def, limits, quick));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { machine: { cores: os.availableParallelism(), peak_matmul_gflops: gflops, memory_bandwidth_gbs: bandwidth }, models };
}
