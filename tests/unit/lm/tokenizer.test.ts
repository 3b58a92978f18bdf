import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ChatMessage,
  type ChatTokenizer,
  createChatTokenizer,
  loadTokenizer,
} from '../../../server/lm/tokenizer.ts';
import { CHATML_TEMPLATE } from '../../../server/lm/chat-template.ts';
import { isLmError } from '../../../server/lm/errors.ts';
import { randomText, seededRandom } from '../../helpers/random-text.ts';
import {
  type FixtureDir,
  writeByteLevelFixture,
  writeMetaspaceFixture,
  ZEPHYR_LIKE_TEMPLATE,
} from '../../helpers/tokenizer-fixtures.ts';

const dirs: string[] = [];
const track = (f: FixtureDir): FixtureDir => {
  dirs.push(f.dir);
  return f;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const byteLevel = track(writeByteLevelFixture());
const metaspace = track(writeMetaspaceFixture());

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const concatBytes = (tok: ChatTokenizer, ids: number[]): Uint8Array =>
  Uint8Array.from(ids.flatMap((id) => [...tok.tokenBytes(id)]));

const SAMPLES = [
  'Hello the world',
  'café naïve résumé',
  '你好，世界',
  'emoji 😀 and family 👨‍👩‍👧 and 👩‍💻',
  'e\u0301 a\u0308\u0304 combining',
  'lines\n\nwith\ttabs\r\nand CRLF',
  'Здравствуй, мир! مرحبا',
  '𝐀𝐁𝐂 math letters',
  '  two leading spaces, trailing  ',
  'Hello .  , ! ?', // HF's clean_up_tokenization_spaces would rewrite this
];

const CHAT: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there 😀' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'Again?' },
];

function expectLmError(fn: () => unknown, code: string, mention: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isLmError(e, code), `expected LmError ${code}, got ${String(e)}`);
    assert.ok(e.message.includes(mention), `"${e.message}" should mention ${mention}`);
    return true;
  });
}

function writeDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'attune-tok-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe('byte-level BPE (GPT-2 style)', () => {
  const tok = loadTokenizer(byteLevel.dir, { extraEosTokenIds: [5, 273] });

  it('reads vocabulary size, special tokens, BOS and EOS', () => {
    const endOfText = 273;
    assert.equal(tok.vocabSize, 276);
    assert.equal(tok.bosTokenId, endOfText);
    assert.deepEqual(new Set(tok.specialTokenIds), new Set([273, 274, 275]));
    // eos_token, the extra ids (deduplicated), and ChatML's markers because the fallback template is in use.
    assert.deepEqual(tok.eosTokenIds, [273, 5, 275, 274]);
    assert.equal(tok.decodeStripsLeadingSpace, false);
  });

  it('round-trips arbitrary UTF-8 through encode and decode', () => {
    const rand = seededRandom(1);
    const texts = [...SAMPLES, ...Array.from({ length: 300 }, () => randomText(rand))];
    for (const text of texts) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.equal(tok.decode(ids), text, JSON.stringify(text));
      assert.deepEqual(tok.encode(text), ids, 'GPT-2 adds no special tokens');
    }
  });

  it('tokenBytes concatenate to the UTF-8 of decode, including tokens that end mid-character', () => {
    const rand = seededRandom(2);
    for (const text of [...SAMPLES, ...Array.from({ length: 200 }, () => randomText(rand))]) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      assert.deepEqual(concatBytes(tok, ids), utf8(tok.decode(ids)), JSON.stringify(text));
    }
    const ni = tok.encode('你', { addSpecialTokens: false });
    assert.equal(ni.length, 2, 'a merged token holds the first two of 你’s three bytes');
    assert.deepEqual([...tok.tokenBytes(ni[0])], [0xe4, 0xbd]);
    assert.deepEqual([...tok.tokenBytes(ni[1])], [0xa0]);
    const the = tok.encode(' the', { addSpecialTokens: false });
    assert.equal(the.length, 1);
    assert.deepEqual(tok.tokenBytes(the[0]), utf8(' the'));
    assert.deepEqual(tok.tokenBytes(274), utf8('<|im_start|>'));
  });

  it('encodes special-token text as the special token and can skip it when decoding', () => {
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>', { addSpecialTokens: false });
    assert.equal(ids[0], 274);
    assert.equal(ids.at(-1), 275);
    assert.equal(tok.decode(ids), '<|im_start|>user\nhi<|im_end|>');
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'user\nhi');
  });

  it('tolerates empty and unknown ids but rejects non-ids', () => {
    assert.equal(tok.decode([]), '');
    assert.deepEqual(tok.encode(''), []);
    const hi = tok.encode('hi', { addSpecialTokens: false });
    assert.equal(tok.decode([...hi, 9999]), 'hi', 'ids past the vocabulary (padded embeddings) decode to nothing');
    assert.equal(tok.tokenBytes(9999).length, 0);
    expectLmError(() => tok.tokenBytes(-1), 'bad_argument', 'tokenBytes');
    expectLmError(() => tok.tokenBytes(1.5), 'bad_argument', 'tokenBytes');
    expectLmError(() => tok.decode([1, Number.NaN]), 'bad_argument', 'index 1');
  });

  it('falls back to the ChatML template when the model has none', () => {
    assert.equal(tok.hasOwnChatTemplate, false);
    assert.equal(tok.chatTemplate, CHATML_TEMPLATE);
    assert.deepEqual(tok.stopStrings, ['<|im_end|>', '<|im_start|>']);
    const expected =
      '<|im_start|>system\nBe brief.<|im_end|>\n' +
      '<|im_start|>user\nHi there 😀<|im_end|>\n' +
      '<|im_start|>assistant\nHello!<|im_end|>\n' +
      '<|im_start|>user\nAgain?<|im_end|>\n';
    assert.equal(tok.applyChatTemplate(CHAT, { addGenerationPrompt: false }), expected);
    const prompt = tok.applyChatTemplate(CHAT, { addGenerationPrompt: true });
    assert.equal(prompt, `${expected}<|im_start|>assistant\n`);
    const ids = tok.encodeChat(CHAT, { addGenerationPrompt: true });
    assert.equal(ids[0], 274, 'no BOS: GPT-2 never adds one');
    assert.equal(tok.decode(ids), prompt);
  });
});

describe('Metaspace BPE with byte fallback (Llama / sentencepiece style)', () => {
  const tok = loadTokenizer(metaspace.dir);

  it('reads vocabulary size, special tokens, BOS and EOS', () => {
    assert.equal(tok.vocabSize, 344);
    assert.equal(tok.bosTokenId, 1, 'bos_token given as a serialized AddedToken');
    assert.deepEqual(tok.eosTokenIds, [2]);
    assert.deepEqual(new Set(tok.specialTokenIds), new Set([0, 1, 2]));
    assert.equal(tok.decodeStripsLeadingSpace, true);
  });

  it('round-trips arbitrary UTF-8 (one leading space is lost, as in HF with prepend_scheme "first")', () => {
    const rand = seededRandom(3);
    const texts = [...SAMPLES, ...Array.from({ length: 300 }, () => randomText(rand))];
    for (const text of texts) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      const expected = text.startsWith(' ') ? text.slice(1) : text;
      assert.equal(tok.decode(ids), expected, JSON.stringify(text));
      const withBos = tok.encode(text);
      assert.equal(withBos[0], 1, 'the post-processor adds BOS');
      assert.deepEqual(withBos.slice(1), ids);
      assert.equal(tok.decode(withBos, { skipSpecialTokens: true }), expected);
    }
  });

  it('tokenBytes: ▁ is a space, <0xNN> is one byte; together they give decode (less its stripped space)', () => {
    const rand = seededRandom(4);
    for (const text of [...SAMPLES, ...Array.from({ length: 200 }, () => randomText(rand))]) {
      const ids = tok.encode(text, { addSpecialTokens: false });
      let bytes = concatBytes(tok, ids);
      if (tok.decodeStripsLeadingSpace && bytes[0] === 0x20) bytes = bytes.subarray(1);
      assert.deepEqual(bytes, utf8(tok.decode(ids)), JSON.stringify(text));
    }
    const ids = tok.encode('Hello the 你', { addSpecialTokens: false });
    assert.deepEqual(
      ids.map((id) => [...tok.tokenBytes(id)]),
      [[...utf8(' Hello')], [...utf8(' the')], [0x20], [0xe4], [0xbd], [0xa0]],
    );
    assert.deepEqual(tok.tokenBytes(2), utf8('</s>'));
  });

  it('renders its own chat template with bos_token, eos_token and add_generation_prompt', () => {
    assert.equal(tok.hasOwnChatTemplate, true);
    assert.equal(tok.chatTemplate, ZEPHYR_LIKE_TEMPLATE);
    assert.deepEqual(tok.stopStrings, []);
    const body =
      '<s><|system|>\nBe brief.</s>\n<|user|>\nHi there 😀</s>\n<|assistant|>\nHello!</s>\n<|user|>\nAgain?</s>\n';
    assert.equal(tok.applyChatTemplate(CHAT, { addGenerationPrompt: false }), body);
    assert.equal(tok.applyChatTemplate(CHAT, { addGenerationPrompt: true }), `${body}<|assistant|>\n`);
  });

  it('encodeChat does not add a second BOS when the template writes one', () => {
    const ids = tok.encodeChat(CHAT, { addGenerationPrompt: true });
    assert.equal(ids[0], 1);
    assert.equal(ids.filter((id) => id === 1).length, 1);
    assert.equal(ids.filter((id) => id === 2).length, 4, 'each </s> written by the template is the EOS token');
    assert.equal(tok.decode(ids), tok.applyChatTemplate(CHAT, { addGenerationPrompt: true }));
  });

  it('encodeChat adds BOS when the template does not write it but the tokenizer would', () => {
    const noBos = track(
      writeMetaspaceFixture({
        chat_template: "{% for m in messages %}{{ '[' + m['role'] + '] ' + m['content'] + '\\n' }}{% endfor %}",
      }),
    );
    const t = loadTokenizer(noBos.dir);
    const ids = t.encodeChat([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true });
    assert.equal(ids[0], 1);
    assert.equal(ids.filter((id) => id === 1).length, 1);
    assert.equal(t.decode(ids, { skipSpecialTokens: true }), '[user] Hi\n');
  });
});

describe('chat template sources and errors', () => {
  it("takes the 'default' entry of a list of named templates", () => {
    const f = track(
      writeMetaspaceFixture({
        chat_template: [
          { name: 'tool_use', template: 'TOOLS' },
          { name: 'default', template: "{% for m in messages %}{{ m['content'] }}|{% endfor %}" },
        ],
      }),
    );
    assert.equal(loadTokenizer(f.dir).applyChatTemplate(CHAT, { addGenerationPrompt: false }), 'Be brief.|Hi there 😀|Hello!|Again?|');
    const noDefault = track(writeMetaspaceFixture({ chat_template: [{ name: 'tool_use', template: 'TOOLS' }] }));
    expectLmError(() => loadTokenizer(noDefault.dir), 'config_invalid', 'tokenizer_config.json');
  });

  it('reads chat_template.jinja beside the config when the config has none', () => {
    const f = track(writeByteLevelFixture());
    writeFileSync(join(f.dir, 'chat_template.jinja'), "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}");
    const t = loadTokenizer(f.dir);
    assert.equal(t.hasOwnChatTemplate, true);
    assert.deepEqual(t.stopStrings, []);
    assert.equal(t.applyChatTemplate(CHAT.slice(0, 2), { addGenerationPrompt: true }), '<system>Be brief.<user>Hi there 😀');
  });

  it('a template that does not parse fails at load, naming tokenizer_config.json', () => {
    const f = track(writeMetaspaceFixture({ chat_template: '{% for m in messages %}{{ m.content }' }));
    expectLmError(() => loadTokenizer(f.dir), 'config_invalid', 'tokenizer_config.json');
  });

  it('a template that fails while rendering is config_invalid, naming tokenizer_config.json', () => {
    const f = track(writeMetaspaceFixture({ chat_template: "{{ messages[0]['content'].no_such_method() }}" }));
    const t = loadTokenizer(f.dir);
    expectLmError(() => t.applyChatTemplate(CHAT, { addGenerationPrompt: true }), 'config_invalid', 'tokenizer_config.json');
  });

  it("the template's raise_exception is a bad_argument carrying the template's message", () => {
    const f = track(
      writeMetaspaceFixture({
        chat_template:
          "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ messages[0]['content'] }}",
      }),
    );
    const t = loadTokenizer(f.dir);
    expectLmError(() => t.applyChatTemplate(CHAT, { addGenerationPrompt: true }), 'bad_argument', 'System role not supported');
    assert.equal(t.applyChatTemplate(CHAT.slice(1), { addGenerationPrompt: true }), 'Hi there 😀');
  });

  it('rejects malformed messages', () => {
    const t = loadTokenizer(metaspace.dir);
    const bad = [{ role: 'robot', content: 'x' }] as unknown as ChatMessage[];
    expectLmError(() => t.applyChatTemplate(bad, { addGenerationPrompt: true }), 'bad_argument', 'message 0');
  });
});

describe('loading errors', () => {
  const json = JSON.stringify(byteLevel.tokenizerJson);
  const config = JSON.stringify(byteLevel.tokenizerConfig);

  it('names a missing file', () => {
    expectLmError(() => loadTokenizer(writeDir({ 'tokenizer_config.json': config })), 'file_missing', 'tokenizer.json');
    expectLmError(() => loadTokenizer(writeDir({ 'tokenizer.json': json })), 'file_missing', 'tokenizer_config.json');
  });

  it('names a corrupt file', () => {
    expectLmError(
      () => loadTokenizer(writeDir({ 'tokenizer.json': json.slice(0, 200), 'tokenizer_config.json': config })),
      'file_corrupt',
      'tokenizer.json',
    );
    expectLmError(
      () => loadTokenizer(writeDir({ 'tokenizer.json': json, 'tokenizer_config.json': '[1, 2]' })),
      'file_corrupt',
      'tokenizer_config.json',
    );
    expectLmError(
      () => loadTokenizer(writeDir({ 'tokenizer.json': '{"version": "1.0"}', 'tokenizer_config.json': config })),
      'file_corrupt',
      'tokenizer.json',
    );
    const unknownModel = JSON.stringify({ ...byteLevel.tokenizerJson, model: { type: 'Mystery' } });
    expectLmError(
      () => loadTokenizer(writeDir({ 'tokenizer.json': unknownModel, 'tokenizer_config.json': config })),
      'file_corrupt',
      'tokenizer.json',
    );
  });

  it('rejects bad extra EOS ids', () => {
    expectLmError(() => loadTokenizer(byteLevel.dir, { extraEosTokenIds: [-4] }), 'bad_argument', 'extraEosTokenIds');
  });

  it('builds the same tokenizer from parsed files', () => {
    const t = createChatTokenizer({ tokenizerJson: byteLevel.tokenizerJson, tokenizerConfig: byteLevel.tokenizerConfig });
    const fromDisk = loadTokenizer(byteLevel.dir);
    assert.deepEqual(t.encode('Hello the world 😀'), fromDisk.encode('Hello the world 😀'));
    assert.equal(t.hasOwnChatTemplate, false);
  });
});
