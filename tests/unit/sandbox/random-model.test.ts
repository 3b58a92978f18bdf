import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { Template } from '@huggingface/jinja';
import { loadModelConfig } from '../../../server/lm/model-config.ts';
import { CHATML_TEMPLATE } from '../../../server/lm/chat-template.ts';
import { Rng } from '../../../server/lm/rng.ts';
import { makeByteLevelTokenizer, writeRandomModel, type RandomModelSpec } from '../../../sandbox/random-model.ts';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, openWeights, writeSafetensors } from '../../../server/lm/safetensors.ts';
import * as gpt2Ref from '../../reference/gpt2.ts';
import * as llamaRef from '../../reference/llama.ts';
import { throwsLm } from '../../helpers/lm-errors.ts';

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-random-model-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let counter = 0;
const tmpDir = (label: string): string => path.join(tmpRoot, `${counter++}-${label}`);


const TINY = { vocabSize: 300, hidden: 32, layers: 2, heads: 4, maxPositions: 64, seed: 7 } as const;

/** The HF tensor names and shapes, written out from the architecture definitions. */
function expectedTensors(spec: RandomModelSpec): Map<string, number[]> {
  const { vocabSize: V, hidden: H } = spec;
  const m = new Map<string, number[]>();
  const prefixed = spec.namePrefix ?? true;
  if (spec.modelType === 'gpt2') {
    const I = spec.intermediate ?? 4 * H;
    const p = prefixed ? 'transformer.' : '';
    m.set(`${p}wte.weight`, [V, H]).set(`${p}wpe.weight`, [spec.maxPositions, H]);
    for (let i = 0; i < spec.layers; i++) {
      const l = `${p}h.${i}.`;
      m.set(`${l}ln_1.weight`, [H]).set(`${l}ln_1.bias`, [H]);
      m.set(`${l}attn.c_attn.weight`, [H, 3 * H]).set(`${l}attn.c_attn.bias`, [3 * H]);
      m.set(`${l}attn.c_proj.weight`, [H, H]).set(`${l}attn.c_proj.bias`, [H]);
      m.set(`${l}ln_2.weight`, [H]).set(`${l}ln_2.bias`, [H]);
      m.set(`${l}mlp.c_fc.weight`, [H, I]).set(`${l}mlp.c_fc.bias`, [I]);
      m.set(`${l}mlp.c_proj.weight`, [I, H]).set(`${l}mlp.c_proj.bias`, [H]);
    }
    m.set(`${p}ln_f.weight`, [H]).set(`${p}ln_f.bias`, [H]);
  } else {
    const p = prefixed ? 'model.' : '';
    const nh = spec.heads;
    const nkv = spec.kvHeads ?? nh;
    const hd = spec.headDim ?? H / nh;
    const I = spec.intermediate!;
    const qkvBias = spec.modelType === 'qwen2' || spec.qkvBias === true;
    m.set(`${p}embed_tokens.weight`, [V, H]);
    for (let i = 0; i < spec.layers; i++) {
      const l = `${p}layers.${i}.`;
      m.set(`${l}input_layernorm.weight`, [H]);
      m.set(`${l}self_attn.q_proj.weight`, [nh * hd, H]);
      m.set(`${l}self_attn.k_proj.weight`, [nkv * hd, H]);
      m.set(`${l}self_attn.v_proj.weight`, [nkv * hd, H]);
      m.set(`${l}self_attn.o_proj.weight`, [H, nh * hd]);
      if (qkvBias) {
        m.set(`${l}self_attn.q_proj.bias`, [nh * hd]).set(`${l}self_attn.k_proj.bias`, [nkv * hd]).set(`${l}self_attn.v_proj.bias`, [nkv * hd]);
      }
      if (spec.modelType === 'llama' && spec.qkvBias === true) m.set(`${l}self_attn.o_proj.bias`, [H]);
      m.set(`${l}post_attention_layernorm.weight`, [H]);
      m.set(`${l}mlp.gate_proj.weight`, [I, H]).set(`${l}mlp.up_proj.weight`, [I, H]).set(`${l}mlp.down_proj.weight`, [H, I]);
      if (spec.mlpBias) m.set(`${l}mlp.gate_proj.bias`, [I]).set(`${l}mlp.up_proj.bias`, [I]).set(`${l}mlp.down_proj.bias`, [H]);
    }
    m.set(`${p}norm.weight`, [H]);
  }
  if (!spec.tie) m.set('lm_head.weight', [V, H]);
  return m;
}

function checkDir(dir: string, spec: RandomModelSpec): void {
  const w = openWeights(dir);
  const expected = expectedTensors(spec);
  assert.deepEqual([...w.names()].sort(), [...expected.keys()].sort());
  for (const [name, shape] of expected) assert.deepEqual(w.info(name).shape, shape, name);
  w.close();
}

const std = (a: Float32Array): number => {
  let s = 0;
  let s2 = 0;
  for (const x of a) {
    s += x;
    s2 += x * x;
  }
  return Math.sqrt(s2 / a.length - (s / a.length) ** 2);
};
const mean = (a: Float32Array): number => a.reduce((s, x) => s + x, 0) / a.length;

describe('writeRandomModel', () => {
  const specs: RandomModelSpec[] = [
    { modelType: 'gpt2', ...TINY, tie: true },
    { modelType: 'gpt2', ...TINY, tie: false, namePrefix: false, intermediate: 48 },
    { modelType: 'llama', ...TINY, kvHeads: 2, intermediate: 64, tie: false },
    { modelType: 'llama', ...TINY, intermediate: 64, tie: true, qkvBias: true, namePrefix: false, headDim: 16 },
    { modelType: 'llama', ...TINY, kvHeads: 1, intermediate: 64, tie: false, mlpBias: true },
    { modelType: 'qwen2', ...TINY, kvHeads: 1, intermediate: 64, tie: true },
    { modelType: 'mistral', ...TINY, kvHeads: 2, intermediate: 64, tie: false, slidingWindow: 16, shardBytes: 20_000 },
  ];
  for (const spec of specs) {
    test(`${spec.modelType} tie=${spec.tie} prefix=${spec.namePrefix ?? true} kv=${spec.kvHeads ?? spec.heads}${spec.shardBytes ? ' sharded' : ''}`, () => {
      const dir = tmpDir(spec.modelType);
      const r = writeRandomModel(dir, spec);
      checkDir(dir, spec);
      const c = loadModelConfig(dir);
      assert.deepEqual(c, r.config);
      assert.equal(c.modelType, spec.modelType);
      assert.equal(c.vocabSize, spec.vocabSize);
      assert.equal(c.hidden, spec.hidden);
      assert.equal(c.layers, spec.layers);
      assert.equal(c.heads, spec.heads);
      assert.equal(c.kvHeads, spec.kvHeads ?? spec.heads);
      assert.equal(c.headDim, spec.headDim ?? spec.hidden / spec.heads);
      assert.equal(c.intermediate, spec.intermediate ?? 4 * spec.hidden);
      assert.equal(c.maxPositions, spec.maxPositions);
      assert.equal(c.tieWordEmbeddings, spec.tie);
      assert.equal(c.slidingWindow, spec.slidingWindow ?? null);
      assert.equal(c.qkvBias, spec.modelType !== 'mistral' && (spec.modelType !== 'llama' || spec.qkvBias === true));
      assert.equal(c.mlpBias, spec.modelType === 'gpt2' || spec.mlpBias === true);
      const eot = spec.vocabSize - 3; // '<|endoftext|>' is the first of the default specials
      assert.equal(c.bosTokenId, eot);
      assert.deepEqual(c.eosTokenIds, [eot, spec.vocabSize - 1]); // config's <|endoftext|>, generation's <|im_end|>
      if (spec.shardBytes) {
        assert.ok(r.weightFiles.length > 2, 'several shards and the index');
        assert.equal(fs.existsSync(path.join(dir, 'model.safetensors')), false);
      }
      for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) {
        assert.ok(fs.existsSync(path.join(dir, f)), f);
      }
      assert.equal(r.parameterCount, [...expectedTensors(spec).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0));
    });
  }

  test('weights are deterministic and independent of sharding, prefixes and write order', () => {
    const base: RandomModelSpec = { modelType: 'llama', ...TINY, intermediate: 64, tie: false };
    const a = tmpDir('det-a');
    const b = tmpDir('det-b');
    const c = tmpDir('det-c');
    const d = tmpDir('det-d');
    writeRandomModel(a, base);
    writeRandomModel(b, base);
    writeRandomModel(c, { ...base, namePrefix: false, shardBytes: 10_000 });
    writeRandomModel(d, { ...base, seed: 8 });
    assert.ok(fs.readFileSync(path.join(a, 'model.safetensors')).equals(fs.readFileSync(path.join(b, 'model.safetensors'))));
    const wa = openWeights(a);
    const wc = openWeights(c);
    const wd = openWeights(d);
    for (const name of wa.names()) {
      assert.deepEqual(wc.getFloat32(name.replace(/^model\./, '')), wa.getFloat32(name), name);
    }
    assert.notDeepEqual(wd.getFloat32('model.layers.0.self_attn.q_proj.weight'), wa.getFloat32('model.layers.0.self_attn.q_proj.weight'));
    // distinct tensors get distinct streams
    assert.notDeepEqual(wa.getFloat32('model.layers.0.mlp.gate_proj.weight'), wa.getFloat32('model.layers.0.mlp.up_proj.weight'));
    wa.close();
    wc.close();
    wd.close();
  });

  test('Rng.fillNormal draws standard normals (moments and tails)', () => {
    const n = 400_000;
    const x = Rng.stream(3, 'stats').fillNormal(new Float32Array(n), 1);
    let m1 = 0;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    const beyond = [0, 0, 0];
    for (const v of x) {
      m1 += v;
      m2 += v * v;
      m3 += v ** 3;
      m4 += v ** 4;
      for (let k = 1; k <= 3; k++) if (Math.abs(v) > k) beyond[k - 1]!++;
    }
    assert.ok(Math.abs(m1 / n) < 0.01, `mean ${m1 / n}`);
    assert.ok(Math.abs(m2 / n - 1) < 0.01, `variance ${m2 / n}`);
    assert.ok(Math.abs(m3 / n) < 0.03, `third moment ${m3 / n}`);
    assert.ok(Math.abs(m4 / n - 3) < 0.06, `fourth moment ${m4 / n}`);
    const want = [0.3173, 0.0455, 0.0027];
    beyond.forEach((c, k) => assert.ok(Math.abs(c / n - want[k]!) < 4 * Math.sqrt(want[k]! / n), `P(|x| > ${k + 1}) = ${c / n}`));
    assert.deepEqual(Rng.stream(3, 'stats').fillNormal(new Float32Array(5), 1), x.subarray(0, 5), 'same seed and stream, same numbers');
  });

  test('initialisation: std 0.02 weights, norms near 1 with noise, small biases', () => {
    const dir = tmpDir('init');
    writeRandomModel(dir, { modelType: 'gpt2', ...TINY, vocabSize: 1000, hidden: 64, layers: 1, tie: true });
    const w = openWeights(dir);
    const wte = w.getFloat32('transformer.wte.weight');
    assert.ok(Math.abs(std(wte) - 0.02) < 0.001, `wte std ${std(wte)}`);
    assert.ok(Math.abs(mean(wte)) < 0.001);
    const ln = w.getFloat32('transformer.h.0.ln_1.weight');
    assert.ok(Math.abs(mean(ln) - 1) < 0.05, `ln mean ${mean(ln)}`);
    assert.ok(std(ln) > 0.05 && std(ln) < 0.15, `ln std ${std(ln)}`);
    const bias = w.getFloat32('transformer.h.0.attn.c_attn.bias');
    assert.ok(std(bias) > 0.01 && std(bias) < 0.03, `bias std ${std(bias)}`);
    w.close();
  });

  test('F16 and BF16 models hold the rounded F32 weights', () => {
    const base: RandomModelSpec = { modelType: 'qwen2', ...TINY, intermediate: 64, tie: true };
    const d32 = tmpDir('f32');
    const d16 = tmpDir('f16');
    const dbf = tmpDir('bf16');
    writeRandomModel(d32, base);
    writeRandomModel(d16, { ...base, dtype: 'F16' });
    writeRandomModel(dbf, { ...base, dtype: 'BF16' });
    const name = 'model.layers.1.self_attn.k_proj.weight';
    const ref = openWeights(d32).getFloat32(name);
    const w16 = openWeights(d16);
    const wbf = openWeights(dbf);
    assert.equal(w16.info(name).dtype, 'F16');
    assert.equal(wbf.info(name).dtype, 'BF16');
    assert.deepEqual(w16.getFloat32(name), ref.map((x) => f16ToF32(f32ToF16(x))));
    assert.deepEqual(wbf.getFloat32(name), ref.map((x) => bf16ToF32(f32ToBf16(x))));
    assert.equal(JSON.parse(fs.readFileSync(path.join(d16, 'config.json'), 'utf8')).torch_dtype, 'float16');
  });

  test('writing again replaces stale weight files', () => {
    const dir = tmpDir('rewrite');
    const spec: RandomModelSpec = { modelType: 'gpt2', ...TINY, tie: true };
    writeRandomModel(dir, { ...spec, shardBytes: 20_000 });
    writeRandomModel(dir, spec);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('safetensors')), ['model.safetensors']);
  });

  test('invalid specs name the field', () => {
    const dir = tmpDir('bad');
    throwsLm(() => writeRandomModel(dir, { modelType: 'gpt2', ...TINY, kvHeads: 2, tie: true }), 'bad_argument', 'kvHeads');
    throwsLm(() => writeRandomModel(dir, { modelType: 'llama', ...TINY, kvHeads: 3, tie: true }), 'bad_argument', 'kvHeads');
    throwsLm(() => writeRandomModel(dir, { modelType: 'llama', ...TINY, vocabSize: 100, tie: true }), 'bad_argument', 'vocabSize');
    throwsLm(() => writeRandomModel(dir, { modelType: 'mistral', ...TINY, qkvBias: true, tie: true }), 'bad_argument', 'qkvBias');
    throwsLm(() => writeRandomModel(dir, { modelType: 'llama', ...TINY, slidingWindow: 4, tie: true }), 'bad_argument', 'slidingWindow');
    throwsLm(() => writeRandomModel(dir, { modelType: 'llama', ...TINY, hidden: 0, tie: true }), 'bad_argument', 'hidden');
    throwsLm(() => writeRandomModel(dir, { modelType: 'qwen2', ...TINY, mlpBias: true, tie: true }), 'bad_argument', 'mlpBias');
    throwsLm(() => writeRandomModel(dir, { modelType: 'gpt2', ...TINY, mlpBias: false, tie: true }), 'bad_argument', 'mlpBias');
  });
});

describe('makeByteLevelTokenizer', () => {
  const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

  test('has exactly vocabSize entries and valid merges', () => {
    for (const V of [259, 300, 5000]) {
      const { tokenizerJson } = makeByteLevelTokenizer(V, specials);
      const vocab = tokenizerJson.model.vocab;
      const ids = [...Object.values(vocab), ...tokenizerJson.added_tokens.map((t) => t.id)].sort((a, b) => a - b);
      assert.deepEqual(ids, Array.from({ length: V }, (_, i) => i), `ids are exactly 0..${V - 1}`);
      assert.equal(tokenizerJson.model.merges.length, V - 256 - specials.length);
      const seen = new Set(Object.keys(vocab).filter((t) => vocab[t]! < 256));
      for (const [a, b] of tokenizerJson.model.merges) {
        assert.ok(seen.has(a) && seen.has(b), `merge parts ${a} ${b} exist before the merge`);
        assert.ok(!seen.has(a + b), `merge result ${a + b} is new`);
        assert.equal(vocab[a + b], seen.size, 'merge results take consecutive ids');
        seen.add(a + b);
      }
      const tok = new Tokenizer(tokenizerJson, makeByteLevelTokenizer(V, specials).tokenizerConfigJson);
      assert.equal(tok.get_vocab(true).size, V);
    }
  });

  test('loads in @huggingface/tokenizers and round-trips arbitrary UTF-8', () => {
    const { tokenizerJson, tokenizerConfigJson } = makeByteLevelTokenizer(2000, specials);
    const tok = new Tokenizer(tokenizerJson, tokenizerConfigJson);
    const texts = [
      'Hello world, the quick brown fox jumps over the lazy dog.',
      'emoji 🦊🏳️‍🌈 👍🏽 and CJK 日本語のテキスト 中文 한국어',
      'combining e\u0301 and zero\u200bwidth, tabs\tand\nnewlines\r\n  and   runs of spaces  ',
      "it's 3.14 — “quotes” ¿qué? ñ ß Ω \u0000 \u007f \uffff",
      ' leading space and trailing space ',
      '<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n',
    ];
    for (const text of texts) {
      const ids: number[] = tok.encode(text).ids;
      assert.equal(tok.decode(ids), text);
      assert.ok(ids.every((id) => id >= 0 && id < 2000));
    }
    const chat: number[] = tok.encode("<|im_start|>user<|im_end|>").ids;
    assert.equal(chat[0], 1998);
    assert.equal(chat[chat.length - 1], 1999);
    assert.ok(tok.encode('the then there').ids.length < 'the then there'.length, 'merges compress text');
    assert.equal(tok.decode(chat, { skip_special_tokens: true }), 'user');
  });

  test('tokenizer_config: special tokens and an optional ChatML template', () => {
    const { tokenizerConfigJson } = makeByteLevelTokenizer(300, specials);
    assert.equal(tokenizerConfigJson.eos_token, '<|im_end|>');
    assert.equal(tokenizerConfigJson.bos_token, '<|endoftext|>');
    assert.equal(tokenizerConfigJson.chat_template, CHATML_TEMPLATE);
    const rendered = new Template(CHATML_TEMPLATE).render({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
      ],
      add_generation_prompt: true,
    });
    assert.equal(rendered, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');

    const plain = makeByteLevelTokenizer(300, ['<|endoftext|>'], { chatTemplate: null });
    assert.equal('chat_template' in plain.tokenizerConfigJson, false);
    assert.equal(plain.tokenizerConfigJson.eos_token, '<|endoftext|>');

    const dir = tmpDir('no-template');
    writeRandomModel(dir, { modelType: 'gpt2', ...TINY, tie: true, chatTemplate: null, specials: ['<|endoftext|>'] });
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    assert.equal(cfg.chat_template, undefined);
    assert.deepEqual(loadModelConfig(dir).eosTokenIds, [299]);
  });

  test('rejects a vocabulary too small for the bytes and specials', () => {
    throwsLm(() => makeByteLevelTokenizer(258, specials), 'bad_argument', 'vocabSize');
    throwsLm(() => makeByteLevelTokenizer(300, ['a']), 'bad_argument', '"a"');
  });
});

// ---------------------------------------------------------------------------------------------
// The float64 references on tiny models

const maxAbsDiff = (a: number[][], b: number[][]): number => {
  assert.equal(a.length, b.length);
  let m = 0;
  a.forEach((row, t) => row.forEach((v, i) => (m = Math.max(m, Math.abs(v - b[t]![i]!)))));
  return m;
};

function embeddingRows(dir: string, name: string, ids: number[]): number[][] {
  const w = openWeights(dir);
  const [, H] = w.info(name).shape as [number, number];
  const table = w.getFloat32(name);
  w.close();
  return ids.map((id) => Array.from(table.subarray(id * H, (id + 1) * H)));
}

describe('reference forwards', () => {
  // A larger init than HF's 0.02 so that attention and every layer visibly move the logits.
  const gpt2Dir = tmpDir('ref-gpt2');
  writeRandomModel(gpt2Dir, { modelType: 'gpt2', ...TINY, tie: true, initStd: 0.2 });
  const llamaDir = tmpDir('ref-llama');
  writeRandomModel(llamaDir, { modelType: 'llama', ...TINY, kvHeads: 2, intermediate: 64, tie: false, initStd: 0.2 });
  const ids = [5, 17, 260, 42, 99, 3];

  for (const [label, ref, dir, embedName] of [
    ['gpt2', gpt2Ref, gpt2Dir, 'transformer.wte.weight'],
    ['llama (GQA 4/2)', llamaRef, llamaDir, 'model.embed_tokens.weight'],
  ] as const) {
    test(`${label}: finite T×V logits; a prefix of token embeddings equals those tokens`, () => {
      const logits = ref.referenceLogits(dir, ids);
      assert.equal(logits.length, ids.length);
      assert.ok(logits.every((row) => row.length === TINY.vocabSize && row.every(Number.isFinite)));
      const spread = Math.max(...logits[0]!) - Math.min(...logits[0]!);
      assert.ok(spread > 0.1, `logits are not flat (spread ${spread})`);

      const prefix = embeddingRows(dir, embedName, ids.slice(0, 2));
      const withPrefix = ref.referenceLogits(dir, ids.slice(2), prefix);
      assert.ok(maxAbsDiff(withPrefix, logits.slice(2)) < 1e-12);
      const all = ref.referenceForwardAll(dir, ids.slice(2), prefix);
      assert.equal(all.length, ids.length);
      assert.ok(maxAbsDiff(all, logits) < 1e-12);
    });

    test(`${label}: a zero prefix changes the logits; logprob sums the right rows`, () => {
      const zeros = [new Array<number>(TINY.hidden).fill(0), new Array<number>(TINY.hidden).fill(0)];
      const plain = ref.referenceLogits(dir, ids);
      const prefixed = ref.referenceLogits(dir, ids, zeros);
      assert.equal(prefixed.length, ids.length);
      assert.ok(maxAbsDiff(plain, prefixed) > 1e-3);

      const all = ref.referenceForwardAll(dir, ids, zeros);
      const logSoftmax = (row: number[], i: number): number => row[i]! - Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      let manual = 0;
      for (let t = 0; t < ids.length; t++) manual += logSoftmax(all[1 + t]!, ids[t]!); // ids[0] predicted at the last prefix row
      assert.ok(Math.abs(ref.referenceLogprob(dir, ids, 0, zeros) - manual) < 1e-9);
      const noPrefix = ref.referenceForwardAll(dir, ids);
      const fromTwo = logSoftmax(noPrefix[1]!, ids[2]!) + logSoftmax(noPrefix[2]!, ids[3]!) + logSoftmax(noPrefix[3]!, ids[4]!) + logSoftmax(noPrefix[4]!, ids[5]!);
      assert.ok(Math.abs(ref.referenceLogprob(dir, ids, 2) - fromTwo) < 1e-9);
      assert.ok(ref.referenceLogprob(dir, ids, 2) < 0);
      throwsLm(() => ref.referenceLogprob(dir, ids, 0), 'bad_argument', 'from');
      throwsLm(() => ref.referenceLogits(dir, [TINY.vocabSize]), 'bad_argument', 'token id');
    });
  }

  test('llama: GQA equals the same model with KV heads explicitly duplicated (repeat_kv order)', () => {
    const config = loadModelConfig(llamaDir);
    const { heads, kvHeads, headDim: D, hidden: H } = config;
    const group = heads / kvHeads;
    const duplicate = (mapping: (h: number) => number): string => {
      const out = tmpDir('dup');
      fs.mkdirSync(out);
      const cfg = JSON.parse(fs.readFileSync(path.join(llamaDir, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...cfg, num_key_value_heads: heads }));
      const w = openWeights(llamaDir);
      const tensors = w.names().map((name) => {
        const data = w.getFloat32(name);
        const shape = w.info(name).shape;
        if (!/\.(k_proj|v_proj)\.weight$/.test(name)) return { name, shape, data };
        const dup = new Float32Array(heads * D * H);
        for (let h = 0; h < heads; h++) dup.set(data.subarray(mapping(h) * D * H, (mapping(h) + 1) * D * H), h * D * H);
        return { name, shape: [heads * D, H], data: dup };
      });
      w.close();
      writeSafetensors(path.join(out, 'model.safetensors'), tensors);
      return out;
    };
    const gqa = llamaRef.referenceLogits(llamaDir, ids);
    const repeated = llamaRef.referenceLogits(duplicate((h) => Math.floor(h / group)), ids);
    assert.ok(maxAbsDiff(gqa, repeated) < 1e-12, `repeat_kv duplication matches (diff ${maxAbsDiff(gqa, repeated)})`);
    // the check has power: the interleaved assignment (h mod kvHeads) is a different model
    const interleaved = llamaRef.referenceLogits(duplicate((h) => h % kvHeads), ids);
    assert.ok(maxAbsDiff(gqa, interleaved) > 1e-3);
  });

  test('llama: sliding window W lets position i see j only when i - j < W', () => {
    const spec: RandomModelSpec = { modelType: 'mistral', ...TINY, kvHeads: 2, intermediate: 64, tie: true, initStd: 0.2 };
    const full = tmpDir('mistral-full');
    const windowed = tmpDir('mistral-window');
    writeRandomModel(full, spec);
    writeRandomModel(windowed, { ...spec, slidingWindow: 2 });
    const a = llamaRef.referenceLogits(full, ids);
    const b = llamaRef.referenceLogits(windowed, ids);
    assert.ok(maxAbsDiff(a.slice(0, 2), b.slice(0, 2)) < 1e-12, 'positions 0 and 1 see everything anyway');
    assert.ok(maxAbsDiff(a.slice(2, 3), b.slice(2, 3)) > 1e-4, 'position 2 no longer sees position 0');
  });

  test('llama: rope scaling', () => {
    const base: RandomModelSpec = { modelType: 'llama', ...TINY, intermediate: 64, tie: true, initStd: 0.2, ropeTheta: 10000 };
    const plain = tmpDir('rope-plain');
    const linear1 = tmpDir('rope-linear1');
    const linear4 = tmpDir('rope-linear4');
    const llama3 = tmpDir('rope-llama3');
    writeRandomModel(plain, base);
    writeRandomModel(linear1, { ...base, ropeScaling: { type: 'linear', factor: 1 } });
    writeRandomModel(linear4, { ...base, ropeScaling: { type: 'linear', factor: 4 } });
    writeRandomModel(llama3, { ...base, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 128 } });
    const p = llamaRef.referenceLogits(plain, ids);
    assert.ok(maxAbsDiff(p, llamaRef.referenceLogits(linear1, ids)) < 1e-12);
    assert.ok(maxAbsDiff(p, llamaRef.referenceLogits(linear4, ids)) > 1e-4);
    assert.ok(maxAbsDiff(p, llamaRef.referenceLogits(llama3, ids)) > 1e-4);

    // head_dim 8, theta 1e4: inv_freq = 1, 0.1, 0.01, 0.001; wavelengths 2π·(1, 10, 100, 1000).
    // With original 128, low 1, high 4: keep wavelengths < 32, divide those > 128, blend in between.
    const inv = llamaRef.loadLlamaReference(llama3).invFreq;
    const s = (128 / (2 * Math.PI * 10) - 1) / (4 - 1);
    const expected = [1, (1 - s) * (0.1 / 8) + s * 0.1, 0.01 / 8, 0.001 / 8];
    expected.forEach((e, i) => assert.ok(Math.abs(inv[i]! - e) < 1e-15, `inv_freq[${i}] = ${inv[i]}, want ${e}`));
    const invLinear = llamaRef.loadLlamaReference(linear4).invFreq;
    [1, 0.1, 0.01, 0.001].forEach((f, i) => assert.ok(Math.abs(invLinear[i]! - f / 4) < 1e-15));
  });

  test('F16 and sharded models load in the references; arch mismatch is refused', () => {
    const dir = tmpDir('ref-f16');
    writeRandomModel(dir, { modelType: 'qwen2', ...TINY, kvHeads: 1, intermediate: 64, tie: true, dtype: 'F16', shardBytes: 30_000, initStd: 0.2 });
    const logits = llamaRef.referenceLogits(dir, ids);
    assert.ok(logits.every((row) => row.every(Number.isFinite)));
    throwsLm(() => gpt2Ref.referenceLogits(dir, ids), 'bad_argument', 'qwen2');
    throwsLm(() => llamaRef.referenceLogits(gpt2Dir, ids), 'bad_argument', 'gpt2');
  });
});
