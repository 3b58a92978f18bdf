// socket.io on the HTTP server: authentication at the handshake, then the chat events. Handlers are
// thin, like the HTTP ones: validate the payload with zod, call a service, emit what it reports.
//
// Client → server:  message:send {conversationId?, content, sampling?}
//                   message:regenerate {messageId, sampling?}
//                   message:abort {messageId}
//                   compare:choose {comparisonId, choice: 'A'|'B'|'tie'|'both_bad'}
// Server → client:  message:start {conversation, created, userMessage|null, message}
//                   message:delta {conversationId, messageId, delta, candidate?, comparisonId?}
//                   message:done {conversationId, message, candidate?, comparisonId?}
//                   compare:start {conversation, created, userMessage, comparisonId, candidates: {A, B}}
//                     (instead of message:start when a send is answered by two candidates)
//                   compare:ready {conversationId, comparisonId, candidates: {A, B}} (both done)
//                   compare:chosen {conversationId, comparisonId, choice, activeMessageId, preferencePairId}
//                   error {code, message, details: {event, ...}}  (the socket stays connected)
import type http from 'node:http';
import type { Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import type { z } from 'zod';
import type { Config } from '../config.ts';
import { type AppError, isAppError, Unauthorized, ValidationError } from '../errors.ts';
import type { TrainingJobRecord } from '../db/user-models.ts';
import { trainingJobView as toJob } from '../services/views.ts';
import type { PersonalizationService } from '../personalize/jobs.ts';
import type { Principal } from '../services/auth.ts';
import type { ChatService, CompareOutcome, ReplyHooks, ReplyOutcome } from '../services/chat.ts';
import type { Services } from '../services/index.ts';
import { choosePayloadSchema, conversationView, messageRefPayloadSchema, messageView, regeneratePayloadSchema, sendPayloadSchema } from './payloads.ts';
import { createWindowLimiter } from './rate-limit.ts';

export const SESSION_COOKIE = 'attune_session';

export interface RealtimeDeps {
  config: Config;
  services: Services;
  chat: ChatService;
  logger: Logger;
  /** Retraining progress for admins (training:progress, training:job) and publish notices. */
  personalization?: PersonalizationService;
}

const ADMIN_ROOM = 'admins';

interface SocketData {
  principal: Principal;
}


export interface ErrorPayload {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * The handshake's credential: `auth: {token}` first (scripts, other origins), else the session cookie.
 * A browser sends cookies on WebSocket handshakes from any page, so the cookie counts only when the
 * page is of this server's own origin (cross-origin clients use tokens, as over HTTP).
 */
function handshakeToken(socket: Socket): string | undefined {
  const auth: unknown = socket.handshake.auth;
  const token = typeof auth === 'object' && auth !== null ? (auth as { token?: unknown }).token : undefined;
  if (typeof token === 'string' && token !== '') return token;
  const cookie = cookieValue(socket.handshake.headers.cookie, SESSION_COOKIE);
  if (!cookie) return undefined;
  const origin = socket.handshake.headers.origin;
  if (origin !== undefined && !isSameOrigin(origin, socket.handshake.headers.host)) {
    throw new Unauthorized('the session cookie is accepted only from pages of this server: pass auth: {token} instead', 'cross_origin_cookie');
  }
  return cookie;
}

function isSameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}

function parsePayload<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  throw new ValidationError(`invalid payload: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`, { issues });
}

export function attachRealtime(server: http.Server, { config, services, chat, logger, personalization }: RealtimeDeps): Server {
  const io = new Server(server, {
    serveClient: false,
    maxHttpBufferSize: config.maxBodyBytes,
    ...(config.corsOrigin ? { cors: { origin: config.corsOrigin === '*' ? '*' : config.corsOrigin, credentials: false } } : {}),
  });
  const sendLimiter = createWindowLimiter({ max: config.chatRateLimit, windowMs: config.chatRateWindowSeconds * 1000, what: 'chat messages' });

  io.use((socket, next) => {
    try {
      const token = handshakeToken(socket);
      if (!token) throw new Unauthorized('sign in first: pass auth: {token} or send the session cookie', 'unauthorized');
      (socket.data as SocketData).principal = services.auth.authenticate(token);
      next();
    } catch (e) {
      const err = isAppError(e) ? e : new Unauthorized();
      // connect_error on the client carries message and data.
      next(Object.assign(new Error(err.message), { data: { code: err.code, message: err.message, details: err.details } }));
    }
  });

  // A disabled account's open connections end at once (its streams stop and are kept as partial).
  services.admin.onUserDisabled((disabledId) => io.in(userRoom(disabledId)).disconnectSockets(true));

  if (personalization) {
    personalization.on('progress', (p: unknown) => io.to(ADMIN_ROOM).emit('training:progress', p));
    personalization.on('job', (job: TrainingJobRecord) => io.to(ADMIN_ROOM).emit('training:job', { job: toJob(job) }));
    // Everyone learns that new soft prompts serve (their next answers carry the new version).
    personalization.on('published', (v: { id: string; publishedAt: number | null } | null) => io.emit('personalization:published', { versionId: v?.id ?? null, publishedAt: v?.publishedAt ?? null }));
  }

  io.on('connection', (socket: Socket) => {
    const userId = (socket.data as SocketData).principal.user.id;
    void socket.join(userRoom(userId));
    if ((socket.data as SocketData).principal.user.role === 'admin') void socket.join(ADMIN_ROOM);
    const log = logger.child({ socketId: socket.id, userId });
    log.debug({ via: (socket.data as SocketData).principal.via }, 'socket connected');
    /** Answers this socket is streaming: aborted when it disconnects. */
    const streaming = new Set<string>();
    /** Candidate message id → its comparison, while streaming. */
    const comparisonOf = new Map<string, string>();

    const emitError = (event: string, e: unknown) => {
      let payload: ErrorPayload;
      if (isAppError(e)) {
        const err: AppError = e;
        payload = { code: err.code, message: err.message, details: { ...err.details, event, status: err.status } };
      } else {
        log.error({ err: e, event }, 'unhandled error in a socket handler');
        payload = { code: 'internal', message: 'internal server error', details: { event, status: 500 } };
      }
      socket.emit('error', payload);
    };

    const hooks: ReplyHooks = {
      onStart({ conversation, created, userMessage, message }) {
        streaming.add(message.id);
        socket.emit('message:start', { conversation: conversationView(conversation), created, userMessage: userMessage && messageView(userMessage), message: messageView(message) });
      },
      onCompareStart({ conversation, created, userMessage, comparison, candidates }) {
        comparisonOf.set(candidates.A.id, comparison.id).set(candidates.B.id, comparison.id);
        streaming.add(candidates.A.id).add(candidates.B.id);
        socket.emit('compare:start', {
          conversation: conversationView(conversation),
          created,
          userMessage: messageView(userMessage),
          comparisonId: comparison.id,
          candidates: { A: messageView(candidates.A), B: messageView(candidates.B) },
        });
      },
      onDelta(delta, message, candidate) {
        socket.emit('message:delta', { conversationId: message.conversationId, messageId: message.id, delta, ...(candidate ? { candidate, comparisonId: comparisonOf.get(message.id) } : {}) });
      },
      onCandidateDone(message, candidate, error) {
        streaming.delete(message.id);
        if (error !== undefined) emitError('message:send', error);
        socket.emit('message:done', { conversationId: message.conversationId, message: messageView(message), candidate, comparisonId: comparisonOf.get(message.id) });
        comparisonOf.delete(message.id);
      },
    };
    const finished = (event: string, outcome: ReplyOutcome | CompareOutcome) => {
      if (outcome.kind === 'compare') {
        socket.emit('compare:ready', {
          conversationId: outcome.conversation.id,
          comparisonId: outcome.comparison.id,
          candidates: { A: messageView(outcome.candidates.A), B: messageView(outcome.candidates.B) },
        });
        return;
      }
      streaming.delete(outcome.message.id);
      if (outcome.error !== undefined) emitError(event, outcome.error);
      socket.emit('message:done', { conversationId: outcome.conversation.id, message: messageView(outcome.message) });
    };

    /** Runs a handler; any failure becomes an `error` event and the socket stays up. */
    const on = (event: string, handler: (payload: unknown) => Promise<void> | void) => {
      socket.on(event, (payload: unknown) => {
        void (async () => {
          try {
            await handler(payload);
          } catch (e) {
            emitError(event, e);
          }
        })();
      });
    };

    on('message:send', async (payload) => {
      const input = parsePayload(sendPayloadSchema, payload);
      sendLimiter.hit(userId);
      finished('message:send', await chat.send(userId, input, hooks));
    });
    on('message:regenerate', async (payload) => {
      const input = parsePayload(regeneratePayloadSchema, payload);
      sendLimiter.hit(userId);
      finished('message:regenerate', await chat.regenerate(userId, input, hooks));
    });
    on('message:abort', (payload) => {
      const { messageId } = parsePayload(messageRefPayloadSchema, payload);
      chat.abort(userId, messageId);
    });
    on('compare:choose', (payload) => {
      const input = parsePayload(choosePayloadSchema, payload);
      const outcome = chat.choose(userId, input);
      socket.emit('compare:chosen', {
        conversationId: outcome.comparison.conversationId,
        comparisonId: outcome.comparison.id,
        choice: outcome.comparison.choice,
        activeMessageId: outcome.activeMessageId,
        preferencePairId: outcome.preferencePairId,
      });
    });
    socket.onAny((event: string) => {
      if (!KNOWN_EVENTS.has(event)) emitError(event, new ValidationError(`unknown event "${event}"`, { known: [...KNOWN_EVENTS] }, 'unknown_event'));
    });

    socket.on('disconnect', (reason) => {
      log.debug({ reason, streaming: streaming.size }, 'socket disconnected');
      // Nobody is left to read the rest: stop, and keep what was generated (status partial).
      for (const messageId of streaming) {
        try {
          chat.abort(userId, messageId);
        } catch {
          // Finished in the meantime.
        }
      }
    });
  });
  return io;
}

const userRoom = (userId: string): string => `user:${userId}`;

const KNOWN_EVENTS = new Set(['message:send', 'message:regenerate', 'message:abort', 'compare:choose']);
