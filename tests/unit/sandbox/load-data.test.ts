// The sandbox's tables are data (sandbox/data/*.json) checked by zod when their module loads: a bad
// edit is refused with the file and the field named, before any corpus is generated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadDataFile } from '../../../sandbox/load-data.ts';
import { templatesSchema } from '../../../sandbox/templates.ts';
import { topicsFileSchema } from '../../../sandbox/topics.ts';

const shipped = (name: string): unknown => JSON.parse(fs.readFileSync(new URL(`../../../sandbox/data/${name}`, import.meta.url), 'utf8'));

function withFile(name: string, text: string, fn: (url: URL, file: string) => void): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-sandbox-data-'));
  try {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    fn(pathToFileURL(file), file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('the shipped tables pass their schemas', () => {
  assert.equal(topicsFileSchema.safeParse(shipped('topics.json')).success, true);
  assert.equal(templatesSchema.safeParse(shipped('templates.json')).success, true);
});

test('a topic slot with final punctuation is refused, naming the file and the field', () => {
  const data = shipped('topics.json') as { domains: { topics: { facts: string[] }[] }[] };
  data.domains[1]!.topics[2]!.facts[0] += '.';
  withFile('topics.json', JSON.stringify(data), (url, file) => {
    assert.throws(() => loadDataFile(url, topicsFileSchema), (e: Error) => {
      assert.ok(e.message.startsWith(`${file}: `), e.message);
      assert.match(e.message, /no final punctuation/);
      assert.match(e.message, /domains\[1\]\.topics\[2\]\.facts\[0\]/);
      return true;
    });
  });
});

test('a template with an unknown placeholder or an unknown pool is refused', () => {
  const data = shipped('templates.json') as Record<string, Record<string, string[]>>;
  data.FACT!.expert!.push('Typically, {fatc}.');
  withFile('templates.json', JSON.stringify(data), (url) => {
    assert.throws(() => loadDataFile(url, templatesSchema), /unknown placeholder \{fatc\}[\s\S]*FACT\.expert/);
  });
  const extra = { ...(shipped('templates.json') as object), GREETINGS: ['Hi.'] };
  withFile('templates.json', JSON.stringify(extra), (url) => {
    assert.throws(() => loadDataFile(url, templatesSchema), /GREETINGS/);
  });
});

test('a file that is not JSON is refused with its path', () => {
  withFile('topics.json', '{"domains": [', (url, file) => {
    assert.throws(() => loadDataFile(url, topicsFileSchema), (e: Error) => e.message.startsWith(`${file}: `) && /JSON/.test(e.message));
  });
});
