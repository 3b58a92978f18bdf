// The default model from scratch (`npm run train:default-model`, which is `cli model train-default`).
// Corpus → byte-level BPE → a small Llama trained with the engine's autodiff (AdamW, warmup + cosine,
// clipping, resumable checkpoints) → models/default with a loss curve and a training report
// (perplexity, style mix of samples, judge accuracy, samples, time and throughput).
import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { writeRandomModel } from './random-model.ts';
import { weightShapes } from '../server/lm/model.ts';
import { openModelDir } from '../server/lm/weights.ts';
import { DEFAULT_OPTIMIZER, LmTrainer, type TrainRow } from './train.ts';
import { writeSafetensors } from '../server/lm/safetensors.ts';
import { loadTokenizer, type ChatMessage, type ChatTokenizer } from '../server/lm/tokenizer.ts';
import { Engine } from '../server/lm/engine.ts';
import { Rng } from '../server/lm/rng.ts';
import { type Example, type StyleMix, generateCorpus, splitOf, styleRequestText } from './corpus.ts';
import { saveTokenizer, trainByteLevelBpe } from './bpe.ts';
import { judgeStyle } from './judge.ts';
import { barChartSvg, lineChartSvg } from './plot.ts';

export interface PretrainOptions {
  out: string;
  work: string;
  seed: number;
  /** Wall-clock budget for the optimisation steps. */
  minutes: number;
  examples: number;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  batchRows: number;
  maxTokens: number;
  lr: number;
  /** Fraction of training examples whose system message asks for their style in plain words. */
  styleRequestRate: number;
  /**
   * Relative weights of the style poles in the training corpus. Long (detailed) answers are the
   * hardest pole for a small model to sustain, and a uniform mix left it at ~20% of unprompted
   * samples against ~49% concise; weighting it up keeps every pole ≥ 20% with a margin.
   */
  styleMix: StyleMix;
  samples: number;
  /** Skip further steps: export and evaluate the latest checkpoint as it is. */
  exportOnly?: boolean;
}

export const DEFAULT_PRETRAIN: PretrainOptions = {
  out: 'models/default', work: 'data/train-default', seed: 1, minutes: 55, examples: 60000, vocabSize: 4096,
  hidden: 256, layers: 6, heads: 8, kvHeads: 4, intermediate: 704, batchRows: 16, maxTokens: 256, lr: 3e-3,
  styleRequestRate: 0.25, styleMix: { length: { concise: 0.8, neutral: 1, detailed: 1.5 } }, samples: 240,
};

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
const log = (msg: string): void => void process.stderr.write(`[train:default-model] ${msg}\n`);
/** Uniform [0, 1) draws of the one seeded generator. */
const uniform = (seed: number): (() => number) => {
  const rng = new Rng(seed);
  return () => rng.next();
};

/** The conversation a training row shows the model: optional style request, prior turns, the response. */
function conversation(ex: Example, withStyleRequest: boolean): ChatMessage[] {
  const msgs: ChatMessage[] = withStyleRequest ? [{ role: 'system', content: styleRequestText(ex.style) }] : [];
  return [...msgs, ...ex.messages, { role: 'assistant', content: ex.response }];
}

function tokenizeExample(tok: ChatTokenizer, ex: Example, withStyleRequest: boolean, maxTokens: number): TrainRow {
  const msgs = conversation(ex, withStyleRequest);
  const prompt = tok.encodeChat(msgs.slice(0, -1), { addGenerationPrompt: true });
  const full = tok.encodeChat(msgs, { addGenerationPrompt: false });
  // Loss on the assistant's answer (and its end-of-turn), not on the user's words.
  const ids = full.slice(0, maxTokens);
  const lossMask = ids.map((_, t) => (t >= prompt.length ? 1 : 0));
  return { ids, lossMask };
}

/** Batches of similar lengths (less padding), in a seeded order. */
function makeBatches(rows: TrainRow[], batchRows: number, rand: () => number): TrainRow[][] {
  const order = rows.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const batches: TrainRow[][] = [];
  const chunk = batchRows * 64;
  for (let c = 0; c < order.length; c += chunk) {
    const part = order.slice(c, c + chunk).sort((a, b) => rows[a]!.ids.length - rows[b]!.ids.length);
    for (let b = 0; b + batchRows <= part.length; b += batchRows) batches.push(part.slice(b, b + batchRows).map((i) => rows[i]!));
  }
  for (let i = batches.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [batches[i], batches[j]] = [batches[j]!, batches[i]!];
  }
  return batches;
}

interface LogPoint {
  step: number;
  loss: number;
  lr: number;
  tokensPerS: number;
  heldout?: number;
}

export async function pretrainDefaultModel(o: PretrainOptions): Promise<Record<string, unknown>> {
  const started = performance.now();
  fs.mkdirSync(o.work, { recursive: true });
  const rand = uniform(o.seed);

  log(`corpus: ${o.examples} examples (seed ${o.seed})`);
  const corpus = generateCorpus({ seed: o.seed, count: o.examples, styleMix: o.styleMix });
  const train = corpus.filter((e) => splitOf(e) === 'train');
  const heldout = corpus.filter((e) => splitOf(e) === 'heldout');

  const modelDir = path.join(o.work, 'model');
  const tokFile = path.join(modelDir, 'tokenizer.json');
  if (!fs.existsSync(tokFile)) {
    log(`tokenizer: byte-level BPE, ${o.vocabSize} tokens`);
    writeRandomModel(modelDir, {
      modelType: 'llama', vocabSize: o.vocabSize, hidden: o.hidden, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads,
      intermediate: o.intermediate, maxPositions: 512, tie: true, seed: o.seed, initStd: 0.02, ropeTheta: 10000,
    });
    const bar = new cliProgress.SingleBar({ format: '  bpe merges [{bar}] {percentage}% | ETA {eta}s', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 10000 }, cliProgress.Presets.shades_classic);
    bar.start(1, 0);
    const texts = train.slice(0, 20000).map((e) => conversation(e, false).map((m) => m.content).join('\n'));
    const tok = trainByteLevelBpe(texts, { vocabSize: o.vocabSize, specials: SPECIALS, onProgress: (d, t) => {
      bar.setTotal(t);
      bar.update(d);
    } });
    bar.stop();
    saveTokenizer(modelDir, tok);
  }
  const m = openModelDir(modelDir);
  const tok = loadTokenizer(modelDir, { extraEosTokenIds: m.config.eosTokenIds });
  const params = new Map([...m.weights.shapes.keys()].map((n) => [n, Float32Array.from(m.weights.get(n))]));
  m.weights.close();
  const nParams = [...params.values()].reduce((s, p) => s + p.length, 0);

  log(`tokenizing ${train.length} training and ${heldout.length} held-out examples`);
  const trainRows = train.map((e) => tokenizeExample(tok, e, rand() < o.styleRequestRate, o.maxTokens));
  const heldRows = heldout.slice(0, 256).map((e) => tokenizeExample(tok, e, false, o.maxTokens));
  const tokensPerRow = trainRows.reduce((s, r) => s + r.ids.length, 0) / trainRows.length;

  // Calibrate the step count to the time budget with a few timed steps of a throwaway trainer.
  const probe = await LmTrainer.create(m.config, new Map([...params].map(([k, v]) => [k, Float32Array.from(v)])), { ...DEFAULT_OPTIMIZER, totalSteps: 10 });
  const probeBatches = makeBatches(trainRows.slice(0, o.batchRows * 8), o.batchRows, uniform(o.seed + 7));
  await probe.trainStep(probeBatches[0]!);
  const t0 = performance.now();
  for (const b of probeBatches.slice(1, 4)) await probe.trainStep(b);
  const secPerStep = (performance.now() - t0) / 3000;
  await probe.release();
  const totalSteps = Math.max(50, Math.floor((o.minutes * 60) / secPerStep));
  log(`${(nParams / 1e6).toFixed(2)}M parameters, ~${tokensPerRow.toFixed(0)} tokens/row, ${secPerStep.toFixed(2)} s/step → ${totalSteps} steps in ${o.minutes} min`);

  const opt = { ...DEFAULT_OPTIMIZER, lr: o.lr, warmupSteps: Math.min(200, Math.floor(totalSteps / 10)), totalSteps };
  const trainer = await LmTrainer.create(m.config, params, opt);
  const ckptDir = path.join(o.work, 'checkpoint');
  let history: LogPoint[] = [];
  let secondsBefore = 0;
  if (fs.existsSync(path.join(ckptDir, 'state.json'))) {
    const state = trainer.loadCheckpoint(ckptDir) as { history?: LogPoint[]; trainSeconds?: number };
    history = state.history ?? [];
    // Older checkpoints lack the clock: estimate it from each step's measured throughput.
    secondsBefore = state.trainSeconds ?? history.reduce((sum, p) => sum + (tokensPerRow * o.batchRows) / p.tokensPerS, 0);
    log(`resumed from step ${trainer.step}`);
  }
  const steps = o.exportOnly ? trainer.step : trainer.opt.totalSteps;
  if (o.exportOnly) log(`exporting the checkpoint at step ${trainer.step} of ${trainer.opt.totalSteps} without further training`);
  // Each epoch has its own seeded order, so a resumed run sees the batches it would have seen.
  const epochBatches = (epoch: number): TrainRow[][] => makeBatches(trainRows, o.batchRows, uniform(o.seed + 1 + epoch));
  let epoch = -1;
  let batches: TrainRow[][] = [];
  const bar = new cliProgress.SingleBar(
    { format: '  train [{bar}] {value}/{total} | loss {loss} | {tps} tok/s | ETA {eta_formatted}', stream: process.stderr, etaBuffer: 50, noTTYOutput: true, notTTYSchedule: 30000 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(steps, trainer.step, { loss: '-', tps: '-' });
  let emaLoss = history.at(-1)?.loss ?? NaN;
  const trainStart = performance.now();
  let trainTokens = 0;
  while (trainer.step < steps) {
    const perEpoch = Math.floor(trainRows.length / o.batchRows);
    const e = Math.floor(trainer.step / perEpoch);
    if (e !== epoch) {
      epoch = e;
      batches = epochBatches(e);
    }
    const idx = trainer.step % perEpoch;
    const tStep = performance.now();
    const r = await trainer.trainStep(batches[idx]!);
    trainTokens += r.tokens;
    emaLoss = Number.isNaN(emaLoss) ? r.loss : 0.95 * emaLoss + 0.05 * r.loss;
    const tps = batches[idx]!.reduce((s, row) => s + row.ids.length, 0) / ((performance.now() - tStep) / 1000);
    const point: LogPoint = { step: trainer.step, loss: r.loss, lr: r.lr, tokensPerS: tps };
    if (trainer.step % 250 === 0 || trainer.step === steps) {
      let sum = 0;
      let count = 0;
      for (let i = 0; i < heldRows.length; i += o.batchRows) {
        const e = await trainer.evaluate(heldRows.slice(i, i + o.batchRows));
        sum += e.loss * e.tokens;
        count += e.tokens;
      }
      point.heldout = sum / count;
    }
    history.push(point);
    bar.update(trainer.step, { loss: emaLoss.toFixed(3), tps: tps.toFixed(0) });
    if (trainer.step % 200 === 0) trainer.saveCheckpoint(ckptDir, { history, trainSeconds: secondsBefore + (performance.now() - trainStart) / 1000 });
  }
  bar.stop();
  const trainSeconds = secondsBefore + (performance.now() - trainStart) / 1000;
  const meanTokensPerS = history.reduce((sum, p) => sum + p.tokensPerS, 0) / Math.max(1, history.length);

  // The trained model, in the HF layout.
  fs.mkdirSync(o.out, { recursive: true });
  const shapes = weightShapes(m.config);
  writeSafetensors(path.join(o.out, 'model.safetensors'), [...shapes].map(([name, shape]) => ({ name: `model.${name}`, shape, data: trainer.params.get(name)! })), {
    metadata: { format: 'pt', producer: 'attune train:default-model' },
  });
  for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
    if (fs.existsSync(path.join(modelDir, f))) fs.copyFileSync(path.join(modelDir, f), path.join(o.out, f));
  }
  await trainer.release();
  fs.writeFileSync(path.join(o.out, 'loss-curve.svg'), lineChartSvg({
    title: 'Default model: training loss', xLabel: 'step', yLabel: 'cross-entropy (nats/token)',
    series: [
      { name: 'train (EMA 0.95)', points: emaSeries(history) },
      { name: 'held-out', points: history.filter((h) => h.heldout !== undefined).map((h) => [h.step, h.heldout!]) },
    ],
  }));

  log('evaluating: samples, style mix, judge accuracy');
  const report = await evaluateDefaultModel(o.out, heldout, o.samples, o.seed);
  const finalHeld = history.filter((h) => h.heldout !== undefined).at(-1)?.heldout ?? NaN;
  const full = {
    model: { parameters: nParams, config: m.config },
    data: { examples: corpus.length, train: train.length, heldout: heldout.length, tokensPerRow, styleRequestRate: o.styleRequestRate, styleMix: o.styleMix },
    training: {
      steps, plannedSteps: trainer.opt.totalSteps, batchRows: o.batchRows, optimizer: trainer.opt, seconds: trainSeconds,
      tokensPerSecond: meanTokensPerS, thisRunTargetTokens: trainTokens, thisRunSeconds: (performance.now() - started) / 1000,
    },
    heldout: { loss: finalHeld, perplexity: Math.exp(finalHeld) },
    ...report,
  };
  fs.writeFileSync(path.join(o.out, 'training-report.json'), `${JSON.stringify(full, null, 2)}\n`);
  fs.writeFileSync(path.join(o.out, 'training-report.md'), reportMarkdown(full));
  return full;
}

function emaSeries(h: LogPoint[]): [number, number][] {
  let e = NaN;
  return h.map((p) => {
    e = Number.isNaN(e) ? p.loss : 0.95 * e + 0.05 * p.loss;
    return [p.step, e];
  });
}

/** Sample held-out prompts with no soft prompt and no style request; judge the style of every answer. */
export async function evaluateDefaultModel(dir: string, heldout: Example[], n: number, seed: number) {
  const engine = await Engine.load(dir);
  const poles = { expertise: ['elementary', 'expert'], length: ['concise', 'detailed'], tone: ['friendly', 'blunt'] } as const;
  const counts: Record<string, number> = {};
  const samples: { prompt: string; response: string; judged: Record<string, string> }[] = [];
  let tokens = 0;
  const t0 = performance.now();
  const picks = heldout.slice(0, n);
  const results = await Promise.all(picks.map((ex, i) => engine.generateText({
    messages: ex.messages, maxNewTokens: 200,
    sampling: { temperature: 1, topK: 0, topP: 0.95, repetitionPenalty: 1, seed: seed * 1000 + i },
  })));
  const seconds = (performance.now() - t0) / 1000;
  results.forEach((r, i) => {
    tokens += r.tokenIds.length;
    const j = judgeStyle(r.text);
    const judged: Record<string, string> = {};
    for (const d of Object.keys(poles) as (keyof typeof poles)[]) {
      const label = j[d].label;
      judged[d] = label;
      counts[`${d}:${label}`] = (counts[`${d}:${label}`] ?? 0) + 1;
    }
    if (samples.length < 12) samples.push({ prompt: picks[i]!.messages.at(-1)!.content, response: r.text, judged });
  });
  const share = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / results.length]));
  // One stream alone, for the ≥ 200 tokens/s target.
  const one = await engine.generateText({ messages: picks[0]!.messages, maxNewTokens: 200, sampling: { temperature: 1, topK: 0, topP: 0.95, repetitionPenalty: 1, seed }, ignoreEos: true });
  await engine.close();
  // The judge against the generator's own labels on held-out responses.
  const judgeAcc: Record<string, number> = {};
  for (const d of Object.keys(poles) as (keyof typeof poles)[]) {
    const onPole = heldout.filter((e) => e.style[d] !== 'neutral');
    judgeAcc[d] = onPole.filter((e) => judgeStyle(e.response)[d].label === e.style[d]).length / Math.max(1, onPole.length);
  }
  fs.writeFileSync(path.join(dir, 'style-mix.svg'), barChartSvg({
    title: 'Default model, no soft prompt: style of sampled answers', yLabel: 'share of samples', yMax: 1,
    seriesNames: ['share'],
    bars: Object.values(poles).flat().map((p) => {
      const d = Object.keys(poles).find((k) => (poles as Record<string, readonly string[]>)[k]!.includes(p))!;
      return { label: `${d}: ${p}`, values: [share[`${d}:${p}`] ?? 0] };
    }),
  }));
  return {
    samples: { count: results.length, styleShare: share, examples: samples, batchTokensPerSecond: tokens / seconds },
    singleStream: { tokens: one.tokenIds.length, tokensPerSecond: one.tokenIds.length / (one.durationMs / 1000) },
    judgeAccuracy: judgeAcc,
  };
}

function reportMarkdown(r: Record<string, any>): string {
  const lines = [
    '# Default model: training report',
    '',
    `- Parameters: ${(r.model.parameters / 1e6).toFixed(2)}M (Llama: hidden ${r.model.config.hidden}, ${r.model.config.layers} layers, ${r.model.config.heads} heads / ${r.model.config.kvHeads} KV heads, vocab ${r.model.config.vocabSize})`,
    `- Data: ${r.data.train} training / ${r.data.heldout} held-out examples (held-out prompts use topics and templates never trained on); style mix ${JSON.stringify(r.data.styleMix ?? 'uniform')}, ${((r.data.styleRequestRate ?? 0) * 100).toFixed(0)}% with a plain-language style request in the system message`,
    `- Training: ${r.training.steps} of ${r.training.plannedSteps} planned steps of ${r.training.batchRows} rows, ${(r.training.seconds / 60).toFixed(1)} min of optimisation, ${r.training.tokensPerSecond.toFixed(0)} tokens/s (mean per step, 2 cores)`,
    `- Held-out loss ${r.heldout.loss.toFixed(3)} nats/token, perplexity **${r.heldout.perplexity.toFixed(2)}**`,
    `- Generation: ${r.singleStream.tokensPerSecond.toFixed(0)} tokens/s on one stream; ${r.samples.batchTokensPerSecond.toFixed(0)} tokens/s over ${r.samples.count} concurrent samples`,
    `- Style judge accuracy on held-out generated responses: ${Object.entries(r.judgeAccuracy).map(([k, v]) => `${k} ${((v as number) * 100).toFixed(1)}%`).join(', ')}`,
    '',
    '![loss curve](loss-curve.svg) ![style mix](style-mix.svg)',
    '',
    '## Style of samples with no soft prompt (temperature 1, top-p 0.95)',
    '',
    '| dimension:pole | share |',
    '|---|---|',
    ...Object.entries(r.samples.styleShare).sort().map(([k, v]) => `| ${k} | ${((v as number) * 100).toFixed(1)}% |`),
    '',
    '## Sample outputs (held-out prompts)',
    '',
    ...r.samples.examples.flatMap((s: { prompt: string; response: string; judged: Record<string, string> }) => [
      `**User:** ${s.prompt}`, '', `**Model** (${Object.values(s.judged).join(', ')}): ${s.response}`, '',
    ]),
  ];
  return `${lines.join('\n')}\n`;
}
