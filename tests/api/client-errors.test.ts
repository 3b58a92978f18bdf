// What Node's HTTP parser refuses still answers in the API's error shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { answerClientErrors } from '../../server/http/client-errors.ts';

async function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

test('an oversize head is a JSON 431 and a malformed request a JSON 400; the server keeps answering', async () => {
  const server = http.createServer((_req, res) => res.end('ok'));
  answerClientErrors(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    const big = await rawExchange(port, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
    assert.match(big, /Content-Type: application\/json/);
    assert.equal(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).error.code, 'headers_too_large');

    const bad = await rawExchange(port, 'NOT A REQUEST\r\n\r\n');
    assert.match(bad, /^HTTP\/1\.1 400 /);
    assert.equal(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4)).error.code, 'malformed_request');

    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'ok');
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
