// The committed default model (models/default) loads with no download and answers in-domain prompts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Engine } from '../../../server/lm/engine.ts';
import { judgeStyle } from '../../../sandbox/judge.ts';

const dir = path.resolve(import.meta.dirname, '../../../models/default');

test('the committed default model loads, uses its chat template and generates on-topic text', async () => {
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'training-report.json']) {
    assert.ok(fs.existsSync(path.join(dir, f)), `models/default/${f} is committed`);
  }
  const engine = await Engine.load(dir);
  try {
    assert.ok(engine.tokenizer.hasOwnChatTemplate, 'the model ships its own chat template');
    const r = await engine.generateText({
      messages: [{ role: 'user', content: 'How do I start a vegetable garden?' }],
      sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 0 },
      maxNewTokens: 120,
    });
    assert.equal(r.finishReason, 'eos', `the answer ends by itself (${r.finishReason}): ${r.text}`);
    const words = r.text.split(/\s+/).filter(Boolean);
    assert.ok(words.length >= 5, `a real answer: ${r.text}`);
    // Mostly dictionary-like words: letters with ordinary punctuation, not byte soup.
    const wordy = words.filter((w) => /^[A-Za-z][A-Za-z'-]*[.,!?:;]?$/.test(w)).length / words.length;
    assert.ok(wordy > 0.8, `words look like English (${wordy.toFixed(2)}): ${r.text}`);
    const judged = judgeStyle(r.text);
    assert.ok(judged.expertise.label && judged.length.label && judged.tone.label);
  } finally {
    await engine.close();
  }
});
