// Generation through the continuous-batching scheduler on a real onnxruntime session: seeded
// determinism, batch-invariance of greedy decoding with joins and leaves, streaming, stop, abort.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeRandomModel } from '../../../sandbox/random-model.ts';
import { Engine } from '../../../server/lm/engine.ts';
import type { SamplingParams } from '../../../server/lm/sampling.ts';
import { isLmError } from '../../../server/lm/errors.ts';
import * as ort from 'onnxruntime-node';
import { IO } from '../../../server/lm/model.ts';
import { packRows } from '../../../server/lm/runtime.ts';
import { type GenerationResult, KvBufferPool } from '../../../server/lm/scheduler.ts';

let dir = '';
let engine: Engine;
const greedy: SamplingParams = { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 };

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-gen-'));
  // A larger init gives peaked, input-dependent distributions, so greedy paths differ per prompt.
  writeRandomModel(dir, { modelType: 'llama', vocabSize: 320, hidden: 48, layers: 2, heads: 4, kvHeads: 2, maxPositions: 128, tie: false, seed: 11, initStd: 0.5 });
  engine = await Engine.load(dir, { maxBatch: 8 });
});
after(async () => {
  await engine.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function collect(stream: AsyncIterable<string>): Promise<string> {
  let s = '';
  for await (const d of stream) s += d;
  return s;
}

test('the same seed gives the same text; another seed gives another', async () => {
  const sampling = { temperature: 1.0, topK: 0, topP: 0.95, repetitionPenalty: 1.1, seed: 1234 };
  const a = await engine.generateText({ prompt: 'hello world', sampling, maxNewTokens: 24, ignoreEos: true });
  const b = await engine.generateText({ prompt: 'hello world', sampling, maxNewTokens: 24, ignoreEos: true });
  const c = await engine.generateText({ prompt: 'hello world', sampling: { ...sampling, seed: 99 }, maxNewTokens: 24, ignoreEos: true });
  assert.deepEqual(a.tokenIds, b.tokenIds);
  assert.equal(a.text, b.text);
  assert.notDeepEqual(a.tokenIds, c.tokenIds);
});

test('greedy decoding in a shared batch gives the same tokens as each request alone, with joins and leaves', async () => {
  const H = engine.runtime.config.hidden;
  const prefix = (k: number) => Float32Array.from({ length: k * H }, (_, i) => Math.sin(i * 0.37 + k));
  const reqs = [
    { prompt: 'The quick brown fox', prefix: null, maxNewTokens: 30 },
    { prompt: 'Attune learns', prefix: prefix(2), maxNewTokens: 8 },
    { prompt: 'a', prefix: prefix(5), maxNewTokens: 20 },
    { prompt: 'Ünïcödé 汉字 🙂 text', prefix: null, maxNewTokens: 12 },
    { prompt: 'zzz', prefix: prefix(1), maxNewTokens: 25 },
  ];
  const alone: GenerationResult[] = [];
  for (const r of reqs) alone.push(await engine.generateText({ ...r, sampling: greedy, ignoreEos: true }));
  const before = engine.scheduler.stats().steps;
  // Two start together; the others join while those are mid-decode.
  const s0 = engine.generate({ ...reqs[0]!, sampling: greedy, ignoreEos: true });
  const s1 = engine.generate({ ...reqs[1]!, sampling: greedy, ignoreEos: true });
  const it = s0[Symbol.asyncIterator]();
  for (let i = 0; i < 3; i++) await it.next();
  const rest = reqs.slice(2).map((r) => engine.generate({ ...r, sampling: greedy, ignoreEos: true }));
  const together = await Promise.all([s0, s1, ...rest].map((s) => s.result));
  together.forEach((r, i) => assert.deepEqual(r.tokenIds, alone[i]!.tokenIds, `request ${i}`));
  const steps = engine.scheduler.stats().steps - before;
  const alone_steps = reqs.reduce((s, r) => s + r.maxNewTokens, 0);
  assert.ok(steps < alone_steps * 0.6, `requests shared decode steps (${steps} steps for ${alone_steps} tokens)`);
  assert.ok(new Set(alone.map((a) => a.tokenIds.join(','))).size === reqs.length, 'the requests really differ');
});

test('many staggered requests: joiners move into free rows, leavers are swapped out, and every greedy answer matches its solo run', async () => {
  const H = engine.runtime.config.hidden;
  const prompts = ['one', 'a longer prompt about tides and moons', 'x', 'bread and butter', 'seven swans', 'q', 'the last of them all, the longest prompt here by far', 'mid'];
  const reqs = prompts.map((prompt, i) => ({
    prompt,
    prefix: i % 3 === 0 ? Float32Array.from({ length: (i % 4 + 1) * H }, (_, k) => Math.cos(k * 0.11 + i)) : null,
    maxNewTokens: 6 + ((i * 7) % 17),
  }));
  const alone: number[][] = [];
  for (const r of reqs) alone.push((await engine.generateText({ ...r, sampling: greedy, ignoreEos: true })).tokenIds);
  const before = engine.scheduler.stats();
  const streams: Promise<GenerationResult>[] = [];
  // Two at first; each later request is sent after a few tokens of the one before, so the batch
  // keeps gaining and losing rows mid-decode.
  for (const [i, r] of reqs.entries()) {
    const st = engine.generate({ ...r, sampling: greedy, ignoreEos: true });
    streams.push(st.result);
    if (i >= 1) {
      const it = st[Symbol.asyncIterator]();
      for (let k = 0; k < 2; k++) await it.next();
    }
  }
  const together = await Promise.all(streams);
  together.forEach((r, i) => assert.deepEqual(r.tokenIds, alone[i], `request ${i} (${reqs[i]!.prompt})`));
  const after = engine.scheduler.stats();
  assert.ok(after.joinsInPlace > before.joinsInPlace, 'some joiners moved into the running batch without a copy');
  assert.equal(after.active, 0);
});

test('the graph\'s greedy ids are the first maximum of its logits, and greedy rows give the same tokens whether or not a step fetches logits', async () => {
  const rt = engine.runtime;
  const V = rt.config.vocabSize;
  // One run, both outputs: greedy_ids equals the argmax of the logits row by row.
  const ids = [[5, 17, 3, 200], [9, 9], [301, 2, 77]];
  const packed = packRows(ids.map((r) => ({ prefix: null, ids: r })), rt.config.hidden, null, 0);
  const out = await rt.serve.run({
    ...packed.feeds, ...rt.emptyPast(ids.length),
    [IO.logitsIndex]: new ort.Tensor('int64', BigInt64Array.from(packed.lastSlot.map(BigInt)), [ids.length, 1]),
  });
  const logits = out[IO.logits]!.data as Float32Array;
  const got = [...(out[IO.greedyIds]!.data as BigInt64Array)].map(Number);
  const want = ids.map((_, b) => {
    const row = logits.subarray(b * V, (b + 1) * V);
    return row.indexOf(Math.max(...row));
  });
  assert.deepEqual(got, want);
  // A greedy request alone (steps fetch greedy ids only) and beside a sampled one (steps fetch logits).
  const req = { prompt: 'tides and moons', prefix: null, maxNewTokens: 16, ignoreEos: true };
  const alone = await engine.generateText({ ...req, sampling: greedy });
  const sampled = engine.generate({ prompt: 'bread', sampling: { temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, seed: 7 }, maxNewTokens: 24, ignoreEos: true });
  const mixed = engine.generate({ ...req, sampling: greedy });
  const [m] = await Promise.all([mixed.result, sampled.result]);
  assert.deepEqual(m.tokenIds, alone.tokenIds);
});

test('streamed deltas add up to the final text and never split a character', async () => {
  const stream = engine.generate({ prompt: '🙂🙂', sampling: { ...greedy, temperature: 1, seed: 5 }, maxNewTokens: 40, ignoreEos: true });
  const deltas: string[] = [];
  for await (const d of stream) deltas.push(d);
  const r = await stream.result;
  assert.equal(deltas.join(''), r.text);
  for (const d of deltas) assert.ok(!/[\uD800-\uDBFF]$/.test(d) && !/^[\uDC00-\uDFFF]/.test(d), 'no lone surrogate at a delta edge');
  assert.equal(r.finishReason, 'length');
  assert.equal(r.tokenIds.length, 40);
});

test('stop strings end generation and are not emitted', async () => {
  const full = await engine.generateText({ prompt: 'stop here', sampling: greedy, maxNewTokens: 30, ignoreEos: true });
  assert.ok(full.text.length > 6);
  const stop = full.text.slice(3, 5);
  const r = await engine.generateText({ prompt: 'stop here', sampling: greedy, maxNewTokens: 30, ignoreEos: true, stop: [stop] });
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.text, full.text.slice(0, full.text.indexOf(stop)));
});

test('abort stops a generation and keeps the partial text', async () => {
  const ac = new AbortController();
  const stream = engine.generate({ prompt: 'long', sampling: greedy, maxNewTokens: 100, ignoreEos: true, signal: ac.signal });
  let seen = '';
  let n = 0;
  for await (const d of stream) {
    seen += d;
    if (++n === 5) ac.abort();
  }
  const r = await stream.result;
  assert.equal(r.finishReason, 'abort');
  assert.ok(r.tokenIds.length >= 5 && r.tokenIds.length < 100);
  assert.equal(r.text, seen);
});

test('chat prompts use the chat template and streaming is an async iterator', async () => {
  const ids = engine.encodePrompt({ messages: [{ role: 'user', content: 'hi' }] });
  assert.deepEqual(ids, engine.tokenizer.encode('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', { addSpecialTokens: false }));
  const text = await collect(engine.generate({ messages: [{ role: 'user', content: 'hi' }], sampling: greedy, maxNewTokens: 5 }));
  assert.equal(typeof text, 'string');
});

test('bad input gets a clear error and the engine keeps serving', async () => {
  const H = engine.runtime.config.hidden;
  const expect = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => isLmError(e, 'bad_argument') && re.test((e as Error).message));
  expect(() => engine.generate({ prompt: 'x', prefix: new Float32Array(H + 1), sampling: greedy, maxNewTokens: 3 }), /hidden size 48/);
  expect(() => engine.generate({ prompt: 'x'.repeat(400), sampling: greedy, maxNewTokens: 3 }), /context is 128/);
  expect(() => engine.scheduler.submit({ promptIds: [1, 999], prefix: null, sampling: greedy, maxNewTokens: 3 }), /out of range/);
  expect(() => engine.generate({ prompt: 'x', sampling: greedy, maxNewTokens: 0 }), /maxNewTokens/);
  await assert.rejects(engine.runtime.logits([1, 400]), /ids\[1\] = 400 is out of range/);
  const ok = await engine.generateText({ prompt: 'still alive', sampling: greedy, maxNewTokens: 3, ignoreEos: true });
  assert.equal(ok.tokenIds.length, 3);
});

test('a request submitted the moment another finishes is still served', async () => {
  for (let i = 0; i < 5; i++) {
    await engine.scheduler.submit({ promptIds: [1, 2, 3], prefix: null, sampling: greedy, maxNewTokens: 2, ignoreEos: true }).result;
    const r = await engine.scheduler.submit({ promptIds: [4, 5], prefix: null, sampling: greedy, maxNewTokens: 2, ignoreEos: true }).result;
    assert.equal(r.tokenIds.length, 2);
  }
});

test('the KV buffer pool hands back a released buffer of the same size class, zeroed, and keeps no more than its budget', async () => {
  for (const n of [1, 1024, 1025, 2896, 2897, 4096, 100_000, 1_179_648, 1_966_080]) {
    const c = KvBufferPool.classOf(n);
    assert.ok(c >= n && c <= Math.max(1024, Math.ceil(n * Math.SQRT2)), `class ${c} of ${n}`);
    assert.equal(KvBufferPool.classOf(c), c, `class of class ${c}`);
  }
  const pool = new KvBufferPool(3 * 4 * 2048);
  const a = pool.take(2000);
  assert.equal(a.length, 2048);
  a[7] = 42;
  pool.give([a]);
  assert.equal(pool.pooledBytes, 4 * 2048);
  const b = pool.take(1800); // same class: the very buffer, zeroed like a fresh one
  assert.equal(b, a);
  assert.equal(b[7], 0);
  assert.equal(pool.pooledBytes, 0);
  assert.notEqual(pool.take(3000), a, 'another class is a new buffer');
  pool.give([pool.take(2048), pool.take(2048), pool.take(2048), pool.take(2048)]);
  assert.equal(pool.pooledBytes, 3 * 4 * 2048, 'the fourth buffer is over budget and left to the GC');
});
