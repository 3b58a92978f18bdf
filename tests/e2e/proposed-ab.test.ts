// A/B comparisons the server proposes by itself (ATTUNE_AB_FRACTION=1): the client shows them side by
// side without being asked, and a tie keeps candidate A as the continuation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureClientBuilt } from '../../client/build.ts';
import { type Browser, openBrowser, type RunningAttune, screenshot, startAttune } from './harness.ts';

let server: RunningAttune;
let browser: Browser;

before(async () => {
  await ensureClientBuilt();
  server = await startAttune({ ATTUNE_AB_FRACTION: '1' });
  browser = await openBrowser({ width: 900, height: 800 });
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a comparison the server proposes appears on its own, and a tie is recorded', async () => {
  const page = browser.page;
  await page.goto(server.url);
  await page.getByRole('button', { name: 'No account? Create one' }).click();
  await page.getByLabel('Username').fill('ab_user');
  await page.getByLabel('Password').fill('ab-user-password');
  await page.getByRole('button', { name: 'Create account' }).click();
  const box = page.getByLabel('Message', { exact: true });
  await box.waitFor();
  assert.equal(await page.getByLabel('A/B: compare two answers').isChecked(), false, 'the user did not ask for A/B');
  await box.fill('What is a glacier?');
  await box.press('Enter');
  const block = page.getByTestId('compare');
  await block.waitFor({ timeout: 30_000 });
  assert.equal(await block.locator('[data-candidate]').count(), 2);
  const tie = block.locator('[data-choice="tie"]');
  await page.waitForFunction((el) => !(el as HTMLButtonElement).disabled, await tie.elementHandle(), { timeout: 60_000 });
  await screenshot(page, 'ab-proposed-by-server');
  // A reload loses nothing: the undecided comparison comes back from the server with its choices.
  await page.reload();
  await block.waitFor({ timeout: 30_000 });
  assert.equal(await block.locator('[data-candidate]').count(), 2);
  await page.waitForFunction((el) => !(el as HTMLButtonElement).disabled, await tie.elementHandle(), { timeout: 30_000 });
  await screenshot(page, 'ab-proposed-after-reload');
  await tie.click();
  await block.waitFor({ state: 'detached', timeout: 15_000 });
  const answer = page.locator('article.msg-assistant').last();
  assert.match((await answer.locator('.badge', { hasText: 'A/B' }).textContent()) ?? '', /A\/B A · tie/);
  assert.equal(await answer.getByTestId('sibling-position').textContent(), '1/2');
  await screenshot(page, 'ab-proposed-tie');
});
