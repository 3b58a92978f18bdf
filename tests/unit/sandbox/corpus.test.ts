import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FOLLOWUP_FOCI, KINDS, generateCorpus, listTopics, promptKey, renderPromptResponse, renderResponse, samplePrompt, splitOf,
  styleRequestText, type Example, type StyleMix,
} from '../../../sandbox/corpus.ts';
import { corpusStats, responseSentences } from '../../../sandbox/corpus-stats.ts';
import { Rng } from '../../../server/lm/rng.ts';
import { DOMAINS } from '../../../sandbox/topics.ts';
import { allStyles, styleSchema, type Style } from '../../../sandbox/style.ts';

// A splitter of the test's own, so the length checks do not lean on the judge.
const sentences = (t: string) => t.split(/(?<=[.!?])\s+/).filter((s) => s.trim().length > 0);
const words = (t: string) => t.split(/\s+/).filter(Boolean).length;

const CORPUS = generateCorpus({ seed: 20240611, count: 2000 });

test('same seed gives byte-identical output; a longer corpus extends a shorter one', () => {
  const a = generateCorpus({ seed: 77, count: 300 });
  const b = generateCorpus({ seed: 77, count: 300 });
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  assert.deepEqual(generateCorpus({ seed: 77, count: 120 }), a.slice(0, 120));
  const s = generateCorpus({ seed: 'named-seed', count: 50 });
  assert.equal(JSON.stringify(s), JSON.stringify(generateCorpus({ seed: 'named-seed', count: 50 })));
});

test('different seeds give different corpora', () => {
  const a = generateCorpus({ seed: 77, count: 300 });
  const b = generateCorpus({ seed: 78, count: 300 });
  const same = a.filter((e, i) => e.response === b[i]!.response).length;
  assert.ok(same < 10, `${same} of 300 responses identical across seeds`);
});

test('at least 200 topics, organised as clean data', () => {
  const topics = listTopics();
  assert.ok(topics.length >= 200, `${topics.length} topics`);
  assert.equal(new Set(topics.map((t) => t.id)).size, topics.length, 'topic ids are unique');
  assert.ok(DOMAINS.length >= 15);
  for (const d of DOMAINS) assert.ok(d.topics.length >= 5, `domain ${d.id}`);
  for (const t of topics) {
    assert.ok(t.facts.length >= 2 && t.facts.length <= 4, `${t.id}: 2-4 facts`);
    assert.ok(t.steps.length >= 3 && t.steps.length <= 4, `${t.id}: 3-4 steps`);
    const fields = [t.name, t.task, t.vs, t.def, t.tech, t.like, t.mistake, t.diff, ...t.facts, ...t.steps, ...t.terms];
    for (const f of fields) {
      assert.match(f, /^[\x20-\x7e]+$/, `${t.id}: plain ASCII: ${f}`);
      assert.doesNotMatch(f, /[.;:,!?]$|^\s|\s$/, `${t.id}: no final punctuation: ${f}`);
    }
  }
});

test('every kind is present, follow-ups are multi-turn and every conversation ends with a user turn', () => {
  const kinds = new Set(CORPUS.map((e) => e.kind));
  for (const k of KINDS) assert.ok(kinds.has(k), `kind ${k} present`);
  const foci = new Set(CORPUS.filter((e) => e.kind === 'followup').map((e) => e.focus));
  for (const f of FOLLOWUP_FOCI) assert.ok(foci.has(f), `follow-up focus ${f} present`);
  for (const e of CORPUS) {
    assert.equal(e.messages.at(-1)!.role, 'user');
    if (e.kind === 'followup') {
      assert.deepEqual(e.messages.map((m) => m.role), ['user', 'assistant', 'user']);
      assert.ok(e.messages[1]!.content.length > 20);
    } else {
      assert.equal(e.messages.length, 1);
    }
    assert.ok(!/\{\w+\}/.test(e.response + e.messages.map((m) => m.content).join(' ')), `unfilled placeholder in ${e.id}`);
  }
});

test('style labels match the rendered text', () => {
  const topicOf = new Map(listTopics().map((t) => [t.id, t]));
  for (const e of CORPUS) {
    styleSchema.parse(e.style);
    const n = sentences(e.response).length;
    const w = words(e.response);
    const where = `${e.id} ${JSON.stringify(e.style)}: ${e.response}`;
    if (e.style.length === 'concise') assert.ok(n <= 2 && w <= 60, where);
    if (e.style.length === 'neutral') assert.ok(n >= 3 && n <= 5 && w <= 90, where);
    if (e.style.length === 'detailed') assert.ok(n >= 6 && n <= 10 && w >= 35 && w <= 170, where);
    if (e.style.tone === 'friendly') assert.match(e.response, /!/, where);
    else assert.doesNotMatch(e.response, /!/, where);
    const t = topicOf.get(e.topic)!;
    // Elementary answers carry the topic's analogy and expert answers its technical terms; neither leaks into the others.
    if (e.style.expertise === 'elementary') assert.ok(e.response.includes(t.like), where);
    else assert.ok(!e.response.includes(t.like), where);
    if (e.style.expertise === 'expert') assert.ok(t.terms.some((term) => e.response.includes(term)), where);
    else assert.ok(!e.response.includes(t.tech), where);
  }
  const st = corpusStats(CORPUS);
  assert.ok(st.meanWords.length.concise! < st.meanWords.length.neutral! && st.meanWords.length.neutral! < st.meanWords.length.detailed!);
});

test('one prompt renders in every style, deterministically', () => {
  const prompt = samplePrompt(12345);
  assert.deepEqual(samplePrompt(12345), prompt);
  assert.deepEqual(samplePrompt(new Rng(12345)), prompt);
  const texts = allStyles().map((s) => renderPromptResponse(prompt, s, new Rng('pair')));
  assert.equal(new Set(texts).size, 27);
  assert.deepEqual(allStyles().map((s) => renderPromptResponse(prompt, s, new Rng('pair'))), texts);
  const followup = samplePrompt(1, { kind: 'followup' });
  assert.equal(followup.kind, 'followup');
  const style: Style = { expertise: 'expert', length: 'detailed', tone: 'blunt' };
  assert.equal(renderResponse(followup.topic, 'followup', style, new Rng(5), { focus: followup.focus }), renderPromptResponse(followup, style, new Rng(5)));
  assert.throws(() => renderResponse('no-such-topic', 'explain', style, new Rng(1)), /unknown sandbox topic/);
});

test('styleRequestText asks for the style in plain words', () => {
  assert.equal(styleRequestText({ expertise: 'elementary', length: 'concise', tone: 'friendly' }), 'Please answer simply, briefly and warmly.');
  assert.equal(styleRequestText({ expertise: 'expert', length: 'detailed', tone: 'blunt' }), 'Please answer technically, in detail and bluntly.');
  assert.equal(styleRequestText({ expertise: 'neutral', length: 'concise', tone: 'neutral' }), 'Please answer briefly.');
  assert.equal(styleRequestText({ expertise: 'neutral', length: 'neutral', tone: 'neutral' }), 'Please answer in a plain, balanced way.');
});

test('held-out prompts never appear in training: the split is by (topic, template)', (t) => {
  const train = new Set(CORPUS.filter((e) => splitOf(e) === 'train').map(promptKey));
  const held = new Set(CORPUS.filter((e) => splitOf(e) === 'heldout').map(promptKey));
  for (const k of held) assert.ok(!train.has(k), `key ${k} in both splits`);
  const share = CORPUS.filter((e) => splitOf(e) === 'heldout').length / CORPUS.length;
  t.diagnostic(`held-out share ${(share * 100).toFixed(1)}% of 2000`);
  assert.ok(share > 0.08 && share < 0.25, `held-out share ${share}`);
  const onlyHeld = generateCorpus({ seed: 5, count: 300, split: 'heldout' });
  assert.ok(onlyHeld.every((e) => splitOf(e) === 'heldout'));
  assert.ok(new Set(onlyHeld.map((e) => e.topic)).size > 100, 'held-out prompts span many topics');
  const otherSeed = generateCorpus({ seed: 6, count: 2000, split: 'train' });
  for (const e of otherSeed) assert.ok(!held.has(promptKey(e)));
});

test('diversity: responses are unique and no sentence dominates', (t) => {
  const st = corpusStats(CORPUS);
  t.diagnostic(`unique responses ${(st.uniqueResponseShare * 100).toFixed(1)}%; most common sentence "${st.mostCommonSentence.sentence}" in ${(st.mostCommonSentence.share * 100).toFixed(2)}% of responses`);
  t.diagnostic(`topics covered ${st.topics}; mean words ${JSON.stringify(Object.fromEntries(Object.entries(st.meanWords.length).map(([k, v]) => [k, Math.round(v)])))}`);
  assert.ok(st.uniqueResponseShare >= 0.9);
  assert.ok(st.mostCommonSentence.share < 0.02);
  // Independent recount of the same figure.
  const counts = new Map<string, number>();
  for (const e of CORPUS) for (const s of new Set(responseSentences(e.response))) counts.set(s, (counts.get(s) ?? 0) + 1);
  assert.equal(Math.max(...counts.values()) / CORPUS.length, st.mostCommonSentence.share);
});

test('corpusStats counts topics, kinds and style values', () => {
  const st = corpusStats(CORPUS);
  assert.equal(st.examples, 2000);
  assert.equal(Object.values(st.perKind).reduce((a, b) => a + b, 0), 2000);
  assert.equal(Object.values(st.perTopic).reduce((a, b) => a + b, 0), 2000);
  for (const d of ['expertise', 'length', 'tone'] as const) {
    assert.equal(Object.values(st.perValue[d]).reduce((a, b) => a + b, 0), 2000);
    for (const v of Object.values(st.perValue[d])) assert.ok(v > 500, `${d} is roughly uniform`);
  }
  assert.equal(st.multiTurn, st.perKind.followup);
  assert.ok(st.topics >= 200);
});

test('options: style mix, kind weights and validation', () => {
  const fixed = generateCorpus({ seed: 3, count: 200, styleMix: { expertise: { expert: 1 }, tone: { blunt: 3, friendly: 1 } } });
  assert.ok(fixed.every((e: Example) => e.style.expertise === 'expert' && e.style.tone !== 'neutral'));
  assert.ok(fixed.filter((e) => e.style.tone === 'blunt').length > 110);
  const howto = generateCorpus({ seed: 3, count: 50, kindWeights: { howto: 1 } });
  assert.ok(howto.every((e) => e.kind === 'howto'));
  let progress = 0;
  generateCorpus({ seed: 3, count: 2500, onProgress: (done) => void (progress = done) });
  assert.equal(progress, 2500);
  assert.throws(() => generateCorpus({ seed: 3, count: -1 }));
  assert.throws(() => generateCorpus({ seed: 3, count: 5, styleMix: { tone: { blunt: 0 } } }), /styleMix\.tone/);
  assert.throws(() => generateCorpus({ seed: 3, count: 5, styleMix: { tone: { rude: 1 } } as unknown as StyleMix }), /rude.*styleMix\.tone/);
});
