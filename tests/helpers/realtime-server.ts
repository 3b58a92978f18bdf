// A real Attune HTTP + socket.io server on an ephemeral loopback port, answering with a tiny random
// model, and socket.io-client helpers that wait for events.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { type Logger, pino } from 'pino';
import { io as connect, type Socket } from 'socket.io-client';
import { Engine } from '../../server/lm/engine.ts';
import { writeRandomModel } from '../../sandbox/random-model.ts';
import { attachRealtime, type TrainingEventSource } from '../../server/realtime/index.ts';
import type { ChatEngine, ChatService, UserPrefixSource } from '../../server/services/chat.ts';
import { createChat } from '../../server/services/index.ts';
import type { ErrorPayload } from '../../server/realtime/events.ts';
import { createTestServer, listenOnLoopback, type TestServer, type TestServerOptions } from './api-server.ts';

export interface RealtimeTestServer extends TestServer {
  url: string;
  chat: ChatService;
  engine: Engine;
  stop(): Promise<void>;
}

/** One model per test file: loading it is the slow part. */
export async function loadTestEngine(): Promise<{ engine: Engine; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-rt-model-'));
  writeRandomModel(dir, { modelType: 'llama', vocabSize: 320, hidden: 32, layers: 2, heads: 4, kvHeads: 2, maxPositions: 4096, tie: true, seed: 5, initStd: 0.5 });
  return { engine: await Engine.load(dir, { maxBatch: 8 }), dir };
}

export const TEST_MODEL_ID = 'random-test-model';

export interface RealtimeTestServerOptions extends TestServerOptions {
  chatEngine?: ChatEngine;
  userModels?: UserPrefixSource;
  /** Retraining events for the admin room (e.g. a plain EventEmitter the test emits on). */
  trainingEvents?: TrainingEventSource;
  /** The chat service's and socket layer's logger (silent by default). */
  logger?: Logger;
  /** Replace the chat service the sockets call (e.g. to make one method throw). */
  wrapChat?: (chat: ChatService) => ChatService;
}

/** Socket chat and the OpenAI-compatible API (/v1) over the same engine and soft prompts, as in main.ts. */
export async function startRealtimeServer(engine: Engine, opts: RealtimeTestServerOptions = {}): Promise<RealtimeTestServer> {
  const chatDeps = { engine: opts.chatEngine ?? engine, modelName: TEST_MODEL_ID, ...(opts.userModels ? { userModels: opts.userModels } : {}) };
  const t = createTestServer({ ...opts, chatDeps, env: { ATTUNE_MAX_NEW_TOKENS: '1000', ...opts.env } });
  const logger = opts.logger ?? pino({ level: 'silent' });
  const realChat = createChat({ db: t.db, config: t.config, logger, now: opts.now }, chatDeps);
  const chat = opts.wrapChat ? opts.wrapChat(realChat) : realChat;
  const server = http.createServer(t.app);
  const io = attachRealtime(server, { config: t.config, services: t.services, chat, logger, ...(opts.trainingEvents ? { personalization: opts.trainingEvents } : {}) });
  const url = await listenOnLoopback(server);
  return {
    ...t,
    url,
    chat,
    engine,
    async stop() {
      await new Promise<void>((resolve) => io.close(() => resolve()));
      t.close();
    },
  };
}

export function connectClient(url: string, token: string | undefined, extra: { cookie?: string; origin?: string } = {}): Socket {
  const headers: Record<string, string> = {};
  if (extra.cookie) headers.cookie = extra.cookie;
  if (extra.origin) headers.origin = extra.origin;
  return connect(url, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    ...(token === undefined ? {} : { auth: { token } }),
    ...(Object.keys(headers).length ? { extraHeaders: headers } : {}),
  });
}

/**
 * Writes one socket.io packet exactly as given (e.g. `2["message:send",{}]`, an EVENT) as an engine.io
 * message over the client's live transport: frames no well-behaved client would build.
 */
export function sendRawPacket(socket: Socket, packet: string): void {
  socket.io.engine.send(packet);
}

/** Resolves once connected; rejects with the connect_error. */
export function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
}

/** The next `event` (optionally the next one matching `pred`), or a rejection after `ms`. */
export function nextEvent<T = Record<string, unknown>>(socket: Socket, event: string, pred: (p: T) => boolean = () => true, ms = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${event} within ${ms} ms`));
    }, ms);
    const listener = (p: T) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(p);
    };
    socket.on(event, listener);
  });
}

/**
 * A user message whose greedy answer runs 200 tokens without end-of-sequence, so that an abort or a
 * disconnect lands mid-stream (answers to it are generated with temperature 0 and a high token cap).
 */
export async function findLongPrompt(engine: Engine): Promise<string> {
  for (const candidate of ['tell me a long story', 'go on and on', 'abc', 'why?', 'hello there', 'list everything']) {
    const r = await engine.generateText({
      messages: [{ role: 'user', content: candidate }],
      sampling: { temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, seed: 1 },
      maxNewTokens: 200,
    });
    if (r.finishReason === 'length') return candidate;
  }
  throw new Error('precondition: some prompt makes the random model talk for 200 tokens');
}

/** Resolves with the credentials_ended error (if one came before it) and the disconnect reason. */
export function ending(socket: Socket, ms = 5000): Promise<{ error: ErrorPayload | null; reason: string }> {
  return new Promise((resolve, reject) => {
    let error: ErrorPayload | null = null;
    const timer = setTimeout(() => reject(new Error(`the socket was not ended within ${ms} ms`)), ms);
    socket.on('error', (e: ErrorPayload) => {
      if (e.code === 'credentials_ended') error = e;
    });
    socket.once('disconnect', (reason: string) => {
      clearTimeout(timer);
      resolve({ error, reason });
    });
  });
}
