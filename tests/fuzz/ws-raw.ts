// A WebSocket client small enough to misbehave on purpose (RFC 6455 over a plain TCP socket): it sends
// any frame it is given (text that is not UTF-8, reserved opcodes, unmasked frames, lying lengths) and
// speaks just enough engine.io v4 / socket.io v5 to connect to the "/" namespace before the fuzz frames.
import crypto from 'node:crypto';
import net from 'node:net';

export interface WsMessage {
  opcode: number;
  data: Buffer;
}

export interface FrameOptions {
  fin?: boolean;
  mask?: boolean;
  /** RSV1–3 bits (0–7). */
  rsv?: number;
  /** A payload length to announce instead of the real one. */
  announcedLength?: number | bigint;
}

export const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export class RawWebSocket {
  readonly messages: WsMessage[] = [];
  closed = false;
  closeCode: number | null = null;
  private buf = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private fragmentOpcode = 0;
  private waiters: Array<() => void> = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    const end = () => {
      this.closed = true;
      this.wake();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  /** Opens `path` (e.g. /socket.io/?EIO=4&transport=websocket) with the upgrade handshake. */
  static open(host: string, port: number, path: string, headers: Record<string, string> = {}, ms = 5000): Promise<RawWebSocket> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error('websocket handshake timed out'));
      }, ms);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        clearTimeout(timer);
        const status = head.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
        if (!/^HTTP\/1\.1 101/.test(status)) {
          socket.destroy();
          reject(new Error(`handshake refused: ${head.toString('latin1').slice(0, 300)}`));
          return;
        }
        const ws = new RawWebSocket(socket);
        const rest = head.subarray(end + 4);
        if (rest.length) ws.onData(rest);
        resolve(ws);
      };
      socket.on('data', onData);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      socket.once('connect', () => {
        const key = crypto.randomBytes(16).toString('base64');
        const lines = [
          `GET ${path} HTTP/1.1`,
          `Host: ${host}:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
          ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
        ];
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      });
    });
  }

  frame(opcode: number, payload: Buffer, opts: FrameOptions = {}): void {
    if (this.closed) return;
    const fin = opts.fin ?? true;
    const mask = opts.mask ?? true;
    const len = opts.announcedLength ?? payload.length;
    const header: number[] = [(fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | (opcode & 0x0f)];
    const maskBit = mask ? 0x80 : 0;
    let ext = Buffer.alloc(0);
    if (typeof len === 'bigint' || len > 0xffff) {
      header.push(maskBit | 127);
      ext = Buffer.alloc(8);
      ext.writeBigUInt64BE(BigInt(len));
    } else if (len > 125) {
      header.push(maskBit | 126);
      ext = Buffer.alloc(2);
      ext.writeUInt16BE(len);
    } else header.push(maskBit | len);
    let body = payload;
    let key = Buffer.alloc(0);
    if (mask) {
      key = crypto.randomBytes(4);
      body = Buffer.allocUnsafe(payload.length);
      for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i & 3]!;
    }
    this.socket.write(Buffer.concat([Buffer.from(header), ext, key, body]));
  }

  text(data: string | Buffer): void {
    this.frame(OP.text, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  binary(data: Buffer): void {
    this.frame(OP.binary, data);
  }

  /** Raw bytes on the TCP stream, outside any frame. */
  raw(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  /** Text messages received so far (engine.io packets). */
  texts(): string[] {
    return this.messages.filter((m) => m.opcode === OP.text).map((m) => m.data.toString('utf8'));
  }

  /** Resolves with the first message from index `from` that matches, or null on close or timeout. */
  async waitFor(pred: (m: WsMessage) => boolean, ms: number, from = 0): Promise<WsMessage | null> {
    const deadline = Date.now() + ms;
    let i = from;
    for (;;) {
      for (; i < this.messages.length; i++) if (pred(this.messages[i]!)) return this.messages[i]!;
      if (this.closed) return null;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const b0 = this.buf[0]!;
      const b1 = this.buf[1]!;
      let len = b1 & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      const keyOff = off;
      if (masked) off += 4;
      if (this.buf.length < off + len) return;
      let data = this.buf.subarray(off, off + len);
      if (masked) {
        const key = this.buf.subarray(keyOff, keyOff + 4);
        data = Buffer.from(data.map((b, i) => b ^ key[i & 3]!));
      }
      this.buf = this.buf.subarray(off + len);
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === OP.ping) {
        this.frame(OP.pong, Buffer.from(data));
        continue;
      }
      if (opcode === OP.close) {
        this.closeCode = data.length >= 2 ? data.readUInt16BE(0) : 1005;
        this.messages.push({ opcode, data: Buffer.from(data) });
        this.destroy();
        return;
      }
      if (opcode === OP.continuation) {
        this.fragments.push(Buffer.from(data));
        if (fin) this.deliver(this.fragmentOpcode, Buffer.concat(this.fragments.splice(0)));
        continue;
      }
      if (!fin) {
        this.fragmentOpcode = opcode;
        this.fragments = [Buffer.from(data)];
        continue;
      }
      this.deliver(opcode, Buffer.from(data));
    }
  }

  private deliver(opcode: number, data: Buffer): void {
    // engine.io's heartbeat: the server pings ("2"), the client must answer ("3") or be dropped.
    if (opcode === OP.text && data.length === 1 && data[0] === 0x32) {
      this.text('3');
      return;
    }
    this.messages.push({ opcode, data });
    this.wake();
  }
}

/** A raw socket.io session on "/": engine.io open, then CONNECT with the token; null if refused. */
export async function openSocketIo(host: string, port: number, token: string | undefined, headers: Record<string, string> = {}): Promise<{ ws: RawWebSocket; connectReply: string }> {
  const ws = await RawWebSocket.open(host, port, '/socket.io/?EIO=4&transport=websocket', headers);
  const open = await ws.waitFor((m) => m.opcode === OP.text && m.data[0] === 0x30, 5000);
  if (!open) throw new Error('no engine.io open packet');
  ws.text(`40${token === undefined ? '' : JSON.stringify({ token })}`);
  const reply = await ws.waitFor((m) => m.opcode === OP.text && /^4[04]/.test(m.data.toString('utf8')), 5000);
  return { ws, connectReply: reply ? reply.data.toString('utf8') : '' };
}
