// lm/tokenizer-files.ts: the one writer of byte-level BPE tokenizer.json + tokenizer_config.json
// (the BPE trainer, random models and fixtures all go through it). What it writes, lm/tokenizer.ts
// loads back: ids, specials, the chat template.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHATML_SPECIALS, CHATML_TEMPLATE } from '../../../server/lm/chat-template.ts';
import { isLmError } from '../../../server/lm/errors.ts';
import { loadTokenizer } from '../../../server/lm/tokenizer.ts';
import { byteLevelTokenizerFiles, byteTokenOrder, bytesToUnicode, writeTokenizerFiles } from '../../../server/lm/tokenizer-files.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-tokenizer-files-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** The 256 byte tokens in GPT-2's order, plus 'Ġt', 'he', 'Ġthe'. */
function smallVocab(): { vocab: Record<string, number>; merges: Array<[string, string]> } {
  const chars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  byteTokenOrder().forEach((b, id) => (vocab[chars[b]!] = id));
  const merges: Array<[string, string]> = [['Ġ', 't'], ['h', 'e'], ['Ġt', 'he']];
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  return { vocab, merges };
}

describe('the GPT-2 byte alphabet', () => {
  test('bytes_to_unicode is a bijection onto 256 characters; printable bytes stand for themselves', () => {
    const chars = bytesToUnicode();
    assert.equal(new Set(chars).size, 256);
    assert.equal(chars[0x41], 'A');
    assert.equal(chars[0x20], 'Ġ');
    assert.equal(chars[0x0a], 'Ċ');
    const order = byteTokenOrder();
    assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 256 }, (_, b) => b));
    assert.equal(order[0], 0x21, 'ids start with the printable bytes');
    assert.equal(order[188], 0x00, 'then the rest, in byte order');
  });
});

describe('byteLevelTokenizerFiles + writeTokenizerFiles', () => {
  test('what is written loads: merges apply, specials follow the vocabulary, ChatML by default', () => {
    const { vocab, merges } = smallVocab();
    const files = byteLevelTokenizerFiles(vocab, merges, CHATML_SPECIALS, { modelMaxLength: 128 });
    assert.deepEqual(files.tokenizerJson.added_tokens.map((t) => [t.id, t.content]), [[259, '<|endoftext|>'], [260, '<|im_start|>'], [261, '<|im_end|>']]);
    assert.equal(files.tokenizerConfigJson.chat_template, CHATML_TEMPLATE);
    assert.deepEqual([files.tokenizerConfigJson.bos_token, files.tokenizerConfigJson.eos_token, files.tokenizerConfigJson.pad_token], ['<|endoftext|>', '<|im_end|>', null]);
    const dir = path.join(root, 'chatml');
    writeTokenizerFiles(dir, files);
    const tok = loadTokenizer(dir);
    assert.equal(tok.vocabSize, 262);
    assert.deepEqual(tok.encode(' the', { addSpecialTokens: false }), [258]);
    const text = 'the 😀 héllo\n';
    assert.equal(tok.decode(tok.encode(text)), text);
    assert.equal(tok.hasOwnChatTemplate, true);
    assert.deepEqual(tok.encodeChat([{ role: 'user', content: 'x' }], { addGenerationPrompt: false }).slice(0, 1), [260]);
    assert.ok(tok.eosTokenIds.includes(261));
    assert.ok(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8').endsWith('}\n'));
  });

  test('options: no template, chosen bos/eos/pad; a token that is not special is refused', () => {
    const { vocab, merges } = smallVocab();
    const plain = byteLevelTokenizerFiles(vocab, merges, ['<s>', '</s>'], { chatTemplate: null, padToken: '<s>' });
    assert.equal('chat_template' in plain.tokenizerConfigJson, false);
    assert.deepEqual([plain.tokenizerConfigJson.bos_token, plain.tokenizerConfigJson.eos_token, plain.tokenizerConfigJson.pad_token], [null, '<s>', '<s>']);
    const chosen = byteLevelTokenizerFiles(vocab, merges, ['<s>', '</s>'], { bosToken: '<s>', eosToken: '</s>' });
    assert.deepEqual([chosen.tokenizerConfigJson.bos_token, chosen.tokenizerConfigJson.eos_token], ['<s>', '</s>']);
    assert.throws(() => byteLevelTokenizerFiles(vocab, merges, ['<s>'], { eosToken: '</s>' }), (e: unknown) => isLmError(e, 'bad_argument') && e.message.includes('eosToken'));
  });

  test('vocabulary ids must be exactly 0..n-1', () => {
    const { vocab, merges } = smallVocab();
    assert.throws(() => byteLevelTokenizerFiles({ ...vocab, extra: 300 }, merges, []), (e: unknown) => isLmError(e, 'bad_argument') && e.message.includes('0..259'));
    assert.throws(() => byteLevelTokenizerFiles({ ...vocab, extra: 5 }, merges, []), (e: unknown) => isLmError(e, 'bad_argument'));
  });
});
