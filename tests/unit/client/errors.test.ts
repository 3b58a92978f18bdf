// Readable error text of the web client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readableError } from '../../../client/src/lib/errors.ts';

test('rate limits say when to try again', () => {
  assert.equal(readableError({ code: 'rate_limited', message: 'too many chat messages: try again in 12 s', details: { retryAfterSeconds: 12, status: 429 } }), 'Too many requests: try again in 12 s.');
});

test('validation errors list the fields', () => {
  assert.equal(
    readableError({ code: 'validation_failed', message: 'invalid payload', details: { issues: [{ path: 'content', message: 'content must not be empty' }], status: 400 } }),
    'Please check: content: content must not be empty',
  );
});

test('session ends, server failures and others', () => {
  assert.match(readableError({ code: 'unauthorized', message: 'x', status: 401 }), /sign in again/);
  assert.match(readableError({ code: 'generation_failed', message: 'the model failed to answer', details: { status: 503 } }), /server had a problem/);
  assert.equal(readableError({ code: 'already_decided', message: 'this comparison was already decided (A)', details: { status: 409 } }), 'This comparison was already decided (A)');
});
