// socket.io on the HTTP server: authentication at the handshake, then the chat events. The contract
// (every event's name and payload) is events.ts; every incoming packet passes guard.ts before any
// listener runs. Handlers are thin, like the HTTP ones: call a service, emit what it reports. An
// `error` event {code, message, details: {event, ...}} reports a refusal or failure; the socket
// stays connected, unless its credential ended (code credentials_ended), which also ends the socket.
import type { TrainingEventSource } from '../services/training.ts';
import type http from 'node:http';
import type { Logger } from 'pino';
import { Server, type Socket } from 'socket.io';
import type { Config } from '../config.ts';
import { socketParser } from './parser.ts';
import { appErrorOf, isAppError, Unauthorized } from '../errors.ts';
import type { TrainingJobRecord } from '../db/user-models.ts';
import type { Role } from '../db/users.ts';
import { conversationView, isoOrNull, messageView, trainingJobView as toJob } from '../services/views.ts';
import type { Principal } from '../services/auth.ts';
import type { ChatService, CompareOutcome, ReplyHooks, ReplyOutcome } from '../services/chat.ts';
import { credentialEnds, type CredentialEndReason } from '../services/credential-events.ts';
import { sessionTokenOf } from '../services/credentials.ts';
import type { Services } from '../services/index.ts';
import type { ClientToServerEvents, ErrorPayload, PublishedEvent, ServerToClientEvents, SocketData, TrainingProgressEvent } from './events.ts';
import { checkPacket, shownEventName } from './guard.ts';
import { createWindowLimiter } from './rate-limit.ts';

export type { ErrorPayload } from './events.ts';

type InterServerEvents = Record<string, never>;
export type AttuneServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
type AttuneSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** Where retraining progress and publish notices come from: the training service (services/training.ts). */
export type { TrainingEventSource } from '../services/training.ts';

export interface RealtimeDeps {
  config: Config;
  services: Services;
  chat: ChatService;
  logger: Logger;
  /** Retraining progress for admins (training:progress, training:job) and publish notices. */
  personalization?: TrainingEventSource;
}

const ADMIN_ROOM = 'admins';
const userRoom = (userId: string): string => `user:${userId}`;

const ENDED_MESSAGES: Record<CredentialEndReason | 'invalid_token' | 'account_disabled', string> = {
  logout: 'signed out: this session ended',
  api_key_revoked: 'the API key of this connection was revoked',
  password_changed: 'the password was changed: sign in again',
  account_deleted: 'the account was deleted',
  account_disabled: 'this account is disabled',
  invalid_token: 'the session or API key of this connection is invalid, expired or revoked',
};

/**
 * The handshake's credential: `auth: {token}` first (scripts, other origins), else the session cookie.
 * A browser sends cookies on WebSocket handshakes from any page, so the cookie counts only when the
 * page is of this server's own origin (cross-origin clients use tokens, as over HTTP).
 */
function handshakeToken(socket: AttuneSocket, publicOrigin: string | undefined): string | undefined {
  const auth: unknown = socket.handshake.auth;
  const token = typeof auth === 'object' && auth !== null ? (auth as { token?: unknown }).token : undefined;
  if (typeof token === 'string' && token !== '') return token;
  const cookie = sessionTokenOf(socket.handshake.headers.cookie);
  if (!cookie) return undefined;
  const origin = socket.handshake.headers.origin;
  if (origin !== undefined && !isSameOrigin(origin, socket.handshake.headers.host, publicOrigin)) {
    throw new Unauthorized('the session cookie is accepted only from pages of this server: pass auth: {token} instead', 'cross_origin_cookie');
  }
  return cookie;
}

/** The page's origin is this server's: its host as the handshake reached us, or ATTUNE_PUBLIC_ORIGIN (a proxy that rewrites Host). */
function isSameOrigin(origin: string, host: string | undefined, publicOrigin: string | undefined): boolean {
  try {
    const page = new URL(origin);
    if (publicOrigin !== undefined && page.origin === new URL(publicOrigin).origin) return true;
    return host !== undefined && page.host === host;
  } catch {
    return false;
  }
}

const withRole = (p: Principal, role: Role): Principal => ({ ...p, user: { ...p.user, role } });

export function attachRealtime(server: http.Server, { config, services, chat, logger, personalization }: RealtimeDeps): AttuneServer {
  const io: AttuneServer = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(server, {
    serveClient: false,
    parser: socketParser,
    maxHttpBufferSize: config.maxBodyBytes,
    ...(config.corsOrigin ? { cors: { origin: config.corsOrigin === '*' ? '*' : config.corsOrigin, credentials: false } } : {}),
  });
  // engine.io's polling transport answers a method it does not know (PUT, DELETE…) with a bare 500.
  io.engine.use((req: http.IncomingMessage, res: http.ServerResponse, next: (err?: Error) => void) => {
    if (req.method === 'GET' || req.method === 'POST' || req.method === 'OPTIONS') return next();
    res.writeHead(405, { 'Content-Type': 'application/json; charset=utf-8', Allow: 'GET, POST, OPTIONS', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify({ error: { code: 'method_not_allowed', message: `socket.io answers GET and POST, not ${String(req.method).slice(0, 16)}`, details: {} } }));
  });
  const sendLimiter = createWindowLimiter({ max: config.chatRateLimit, windowMs: config.chatRateWindowSeconds * 1000, what: 'chat messages' });

  /** Emits to one socket or room; a failure to encode stays in the log and never reaches the caller. */
  const safely = (what: string, emit: () => void): void => {
    try {
      emit();
    } catch (err) {
      logger.error({ err, event: what }, 'a socket emit failed');
    }
  };

  /** The open sockets of one user, from the user's room (copied: ending them changes the room). */
  const socketsOf = (userId: string): AttuneSocket[] => {
    const out: AttuneSocket[] = [];
    for (const id of io.sockets.adapter.rooms.get(userRoom(userId)) ?? []) {
      const s = io.sockets.sockets.get(id);
      if (s) out.push(s);
    }
    return out;
  };

  const setRole = (socket: AttuneSocket, role: Role): void => {
    socket.data.principal = withRole(socket.data.principal, role);
    if (role === 'admin') void socket.join(ADMIN_ROOM);
    else void socket.leave(ADMIN_ROOM);
  };

  /** Tells the client why, then closes the connection; its streams stop and are kept as partial. */
  const endSocket = (socket: AttuneSocket, reason: keyof typeof ENDED_MESSAGES): void => {
    const status = reason === 'account_disabled' ? 403 : 401;
    safely('error', () => socket.emit('error', { code: 'credentials_ended', message: ENDED_MESSAGES[reason], details: { reason, status } }));
    socket.disconnect(true);
  };

  io.use((socket, next) => {
    try {
      const token = handshakeToken(socket, config.publicOrigin);
      if (!token) throw new Unauthorized('sign in first: pass auth: {token} or send the session cookie', 'unauthorized');
      socket.data.principal = services.auth.authenticate(token);
      next();
    } catch (e) {
      const err = isAppError(e) ? e : new Unauthorized();
      // connect_error on the client carries message and data.
      next(Object.assign(new Error(err.message), { data: { code: err.code, message: err.message, details: err.details } }));
    }
  });

  // One mechanism for every credential that dies: logout, key revoked, account deleted or disabled.
  services.credentials.onCredentialsEnded((ended) => {
    for (const socket of socketsOf(ended.userId)) {
      if (credentialEnds(ended, socket.data.principal)) endSocket(socket, ended.reason);
    }
  });
  services.credentials.onRoleChanged(({ userId, role }) => {
    for (const socket of socketsOf(userId)) setRole(socket, role);
  });

  if (personalization) {
    personalization.on('progress', (p: TrainingProgressEvent) => safely('training:progress', () => io.to(ADMIN_ROOM).emit('training:progress', p)));
    personalization.on('job', (job: TrainingJobRecord) => safely('training:job', () => io.to(ADMIN_ROOM).emit('training:job', { job: toJob(job) })));
    // Everyone learns that new soft prompts serve (their next answers carry the new version).
    personalization.on('published', (v: { id: string; publishedAt: number | null } | null) => {
      const published: PublishedEvent = { versionId: v?.id ?? null, publishedAt: isoOrNull(v?.publishedAt) };
      safely('personalization:published', () => io.emit('personalization:published', published));
    });
  }

  io.on('connection', (socket) => {
    const userId = socket.data.principal.user.id;
    void socket.join(userRoom(userId));
    if (socket.data.principal.user.role === 'admin') void socket.join(ADMIN_ROOM);
    const log = logger.child({ socketId: socket.id, userId });
    log.debug({ via: socket.data.principal.via }, 'socket connected');
    /** Answers this socket is streaming: aborted when it disconnects. */
    const streaming = new Set<string>();
    /** Candidate message id → its comparison, while streaming. */
    const comparisonOf = new Map<string, string>();

    const emitError = (event: string, e: unknown, ack?: (p: ErrorPayload) => void) => {
      let payload: ErrorPayload;
      const known = appErrorOf(e);
      if (known) {
        payload = { code: known.code, message: known.message, details: { ...known.details, event, status: known.status } };
      } else {
        log.error({ err: e, event }, 'unhandled error in a socket handler');
        payload = { code: 'internal', message: 'internal server error', details: { event, status: 500 } };
      }
      safely('error', () => socket.emit('error', payload));
      if (ack) safely('ack', () => ack(payload));
    };

    /**
     * Runs a handler so that nothing it does reaches the process: a synchronous throw and a rejected
     * promise both become an `error` event, and the socket stays up.
     */
    const run = (event: string, handler: () => Promise<void> | void): void => {
      void (async () => handler())().catch((e: unknown) => emitError(event, e));
    };

    /** The credential is still alive (a missed notice must not keep a dead one chatting), the role current. */
    const stillSignedIn = (event: unknown): boolean => {
      let principal: Principal;
      try {
        principal = services.auth.revalidate(socket.data.principal);
      } catch (e) {
        // Only a dead credential ends the socket; a failing database refuses this one event.
        if (isAppError(e) && (e.status === 401 || e.status === 403)) endSocket(socket, e.code === 'account_disabled' ? 'account_disabled' : 'invalid_token');
        else emitError(shownEventName(event), e);
        return false;
      }
      const role = principal.user.role;
      socket.data.principal = principal;
      if (role !== (socket.rooms.has(ADMIN_ROOM) ? 'admin' : 'user')) setRole(socket, role);
      return true;
    };

    // The gate: runs on the packet as socket.io received it, before any listener is applied to its
    // arguments. A refused packet is dropped here (never passed on to next), after an error event.
    socket.use((packet, next) => {
      try {
        if (!stillSignedIn(packet[0])) return;
        const checked = checkPacket(packet);
        if (!checked.ok) return emitError(checked.event, checked.error, checked.ack);
        // The listener gets zod's output: trimmed, with well-formed strings.
        packet[1] = checked.payload;
        next();
      } catch (e) {
        emitError('(packet)', e);
      }
    });
    // socket.io raises a malformed frame here (and closes the connection); worth a line in the log.
    socket.on('error', (err) => log.warn({ err }, 'socket error'));

    const send = <E extends keyof ServerToClientEvents>(event: E, ...args: Parameters<ServerToClientEvents[E]>): void =>
      safely(event, () => socket.emit(event, ...args));

    const hooks: ReplyHooks = {
      onStart({ conversation, created, userMessage, message }) {
        streaming.add(message.id);
        send('message:start', { conversation: conversationView(conversation), created, userMessage: userMessage && messageView(userMessage), message: messageView(message) });
      },
      onCompareStart({ conversation, created, userMessage, comparison, candidates }) {
        comparisonOf.set(candidates.A.id, comparison.id).set(candidates.B.id, comparison.id);
        streaming.add(candidates.A.id).add(candidates.B.id);
        send('compare:start', {
          conversation: conversationView(conversation),
          created,
          userMessage: messageView(userMessage),
          comparisonId: comparison.id,
          candidates: { A: messageView(candidates.A), B: messageView(candidates.B) },
        });
      },
      onDelta(delta, message, candidate) {
        send('message:delta', { conversationId: message.conversationId, messageId: message.id, delta, ...(candidate ? { candidate, comparisonId: comparisonOf.get(message.id) } : {}) });
      },
      onCandidateDone(message, candidate, error) {
        streaming.delete(message.id);
        if (error !== undefined) emitError('message:send', error);
        send('message:done', { conversationId: message.conversationId, message: messageView(message), candidate, comparisonId: comparisonOf.get(message.id) });
        comparisonOf.delete(message.id);
      },
    };
    const finished = (event: string, outcome: ReplyOutcome | CompareOutcome) => {
      if (outcome.kind === 'compare') {
        send('compare:ready', {
          conversationId: outcome.conversation.id,
          comparisonId: outcome.comparison.id,
          candidates: { A: messageView(outcome.candidates.A), B: messageView(outcome.candidates.B) },
        });
        return;
      }
      streaming.delete(outcome.message.id);
      if (outcome.error !== undefined) emitError(event, outcome.error);
      send('message:done', { conversationId: outcome.conversation.id, message: messageView(outcome.message) });
    };

    socket.on('message:send', (input) =>
      run('message:send', async () => {
        sendLimiter.hit(userId);
        finished('message:send', await chat.send(userId, input, hooks));
      }),
    );
    socket.on('message:regenerate', (input) =>
      run('message:regenerate', async () => {
        sendLimiter.hit(userId);
        finished('message:regenerate', await chat.regenerate(userId, input, hooks));
      }),
    );
    socket.on('message:abort', ({ messageId }) => run('message:abort', () => chat.abort(userId, messageId)));
    socket.on('compare:choose', (input) =>
      run('compare:choose', () => {
        const outcome = chat.choose(userId, input);
        send('compare:chosen', {
          conversationId: outcome.comparison.conversationId,
          comparisonId: outcome.comparison.id,
          choice: outcome.comparison.choice,
          activeMessageId: outcome.activeMessageId,
          preferencePairId: outcome.preferencePairId,
        });
      }),
    );

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
