// Configuration: defaults, environment and flags (flags win), derived paths, and errors that name
// the variable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ConfigError, configHelp, loadConfig } from '../../server/config.ts';

const cwd = '/srv/attune';

test('defaults', () => {
  const c = loadConfig({}, [], cwd);
  assert.equal(c.port, 3000);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.dataDir, path.join(cwd, 'data'));
  assert.equal(c.modelDir, path.join(cwd, 'models/default'));
  assert.equal(c.dbFile, path.join(cwd, 'data', 'attune.db'));
  assert.equal(c.adminPassword, undefined);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.corsOrigin, null);
  assert.equal(c.sessionTtlHours, 168);
  assert.equal(c.cookieSecure, false);
  assert.equal(c.abFraction, 0);
  assert.equal(c.maxNewTokens, 256);
  assert.equal(c.temperature, 0.7);
  assert.equal(c.topP, 0.95);
  assert.equal(c.authRateLimit, 10);
  assert.equal(c.maxBodyBytes, 262144);
});

test('environment variables, then flags over them; empty variables count as unset', () => {
  const env = { PORT: '8080', HOST: '0.0.0.0', ATTUNE_DATA_DIR: '/var/lib/attune', ATTUNE_AB_FRACTION: '0.25', ATTUNE_COOKIE_SECURE: 'yes', ATTUNE_LOG_LEVEL: '' };
  const c = loadConfig(env, ['--port', '9090', '--model-dir=/models/x', '--temperature', '0'], cwd);
  assert.equal(c.port, 9090);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.dbFile, '/var/lib/attune/attune.db');
  assert.equal(c.modelDir, '/models/x');
  assert.equal(c.abFraction, 0.25);
  assert.equal(c.cookieSecure, true);
  assert.equal(c.temperature, 0);
  assert.equal(c.logLevel, 'info');
  assert.equal(loadConfig({}, ['--cookie-secure'], cwd).cookieSecure, true);
  assert.equal(loadConfig({ ATTUNE_DB_FILE: 'elsewhere.db' }, [], cwd).dbFile, path.join(cwd, 'elsewhere.db'));
});

test('CORS: off, any, or a list of exact origins', () => {
  assert.equal(loadConfig({ ATTUNE_CORS_ORIGIN: 'off' }, [], cwd).corsOrigin, null);
  assert.equal(loadConfig({ ATTUNE_CORS_ORIGIN: '*' }, [], cwd).corsOrigin, '*');
  assert.deepEqual(loadConfig({ ATTUNE_CORS_ORIGIN: 'https://a.example, http://localhost:5173' }, [], cwd).corsOrigin, ['https://a.example', 'http://localhost:5173']);
  assert.throws(() => loadConfig({ ATTUNE_CORS_ORIGIN: 'https://a.example/' }, [], cwd), /ATTUNE_CORS_ORIGIN \(--cors-origin\) .*not an origin/);
});

test('errors name the variable and its flag, and list every bad setting', () => {
  const cases: Array<[Record<string, string>, string[], RegExp]> = [
    [{ PORT: 'eighty' }, [], /PORT \(--port\) must be a number/],
    [{ PORT: '70000' }, [], /PORT \(--port\) must be at most 65535/],
    [{ ATTUNE_AB_FRACTION: '1.5' }, [], /ATTUNE_AB_FRACTION \(--ab-fraction\) must be at most 1/],
    [{ ATTUNE_LOG_LEVEL: 'loud' }, [], /ATTUNE_LOG_LEVEL \(--log-level\) must be one of/],
    [{ ATTUNE_ADMIN_PASSWORD: 'short' }, [], /ATTUNE_ADMIN_PASSWORD must be at least 8 characters/],
    [{ ATTUNE_COOKIE_SECURE: 'maybe' }, [], /ATTUNE_COOKIE_SECURE \(--cookie-secure\) must be true or false/],
    [{}, ['--temperature', '3'], /ATTUNE_TEMPERATURE \(--temperature\) must be at most 2/],
    [{}, ['--no-such-flag', '1'], /unknown flag --no-such-flag/],
    [{}, ['--admin-password', 'secret123'], /set ATTUNE_ADMIN_PASSWORD in the environment/],
    [{}, ['--port'], /--port needs a value/],
    [{}, ['stray'], /unexpected argument "stray"/],
  ];
  for (const [env, argv, message] of cases) {
    assert.throws(() => loadConfig(env, argv, cwd), (e: unknown) => e instanceof ConfigError && message.test(e.message), `${JSON.stringify(env)} ${argv.join(' ')}`);
  }
  try {
    loadConfig({ PORT: 'x', ATTUNE_TOP_P: '2' }, [], cwd);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(e.issues.map((i) => i.setting), ['PORT (--port)', 'ATTUNE_TOP_P (--top-p)']);
  }
});

test('the help lists every variable', () => {
  const help = configHelp();
  for (const name of ['PORT', 'HOST', 'ATTUNE_DATA_DIR', 'ATTUNE_MODEL_DIR', 'ATTUNE_DB_FILE', 'ATTUNE_ADMIN_PASSWORD', 'ATTUNE_CORS_ORIGIN', 'ATTUNE_AB_FRACTION', 'ATTUNE_SESSION_TTL_HOURS']) {
    assert.match(help, new RegExp(`\\b${name}\\b`));
  }
});
