// Requests Node's HTTP parser refuses before express sees them (a head over 16 KiB, a malformed
// request line, a bad header) get the API's JSON error shape instead of Node's bare status line.
import type http from 'node:http';
import type { Duplex } from 'node:stream';

const PARSER_STATUS: Record<string, [number, string, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large', 'headers_too_large'],
  HPE_URI_TOO_LONG: [414, 'URI Too Long', 'uri_too_long'],
};

export function answerClientErrors(server: http.Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A peer that reset or timed out has nobody left to read an answer.
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason, code] = PARSER_STATUS[err.code ?? ''] ?? [400, 'Bad Request', 'malformed_request'];
    const body = JSON.stringify({ error: { code, message: `the HTTP request could not be parsed: ${reason.toLowerCase()}`, details: {} } });
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`,
    );
  });
}
