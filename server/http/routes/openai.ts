// The OpenAI-compatible API under /v1: POST /v1/chat/completions (JSON, or server-sent events with
// `stream: true`) and GET /v1/models, so OpenAI's own clients work unchanged. It speaks OpenAI's error
// shape, `{"error": {"message", "type", "code", "param"}}`, not Attune's, hence its own router and error
// handler instead of the route registry (and it is documented by OpenAI's reference, not openapi.json).
//
// Credentials: `Authorization: Bearer <atn_ API key>` (a session token works too); never the cookie,
// so a web page cannot spend a signed-in user's quota.
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import express from 'express';
import type { Config } from '../../config.ts';
import { type AppError, NotFound, ServiceUnavailable, Unauthorized, ValidationError, validationErrorOf } from '../../errors.ts';
import type { AuthService } from '../../services/auth.ts';
import { type ChatCompletionRequest, chatCompletionRequestSchema, type CompletionService, openAiFinishReason, type StartedCompletion, usageOf } from '../../services/completions.ts';
import { bearerTokenOf } from '../../services/credentials.ts';
import { setErrorHeaders, toAppError } from '../middleware/errors.ts';
import { createUserRateLimiter } from '../middleware/rate-limit.ts';

export interface OpenAiRouteDeps {
  config: Config;
  auth: AuthService;
  completions: CompletionService;
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

const typeOf = (status: number): string =>
  status === 401 ? 'authentication_error' : status === 403 ? 'permission_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';

export function openAiError(e: AppError): OpenAiErrorBody {
  const issues = e.details.issues as Array<{ path?: string }> | undefined;
  const param = typeof e.details.param === 'string' ? e.details.param : issues?.[0]?.path ? String(issues[0].path) : null;
  return { error: { message: e.message, type: typeOf(e.status), code: e.code, param } };
}

function parseBody(body: unknown): ChatCompletionRequest {
  if (body === undefined) throw new ValidationError('the request needs a JSON body (Content-Type: application/json)', { param: null }, 'missing_body');
  const r = chatCompletionRequestSchema.safeParse(body);
  if (r.success) return r.data;
  throw validationErrorOf(r.error, { code: 'invalid_request' });
}

const sse = (res: Response, data: unknown): void => void res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);

export function openAiRouter({ config, auth, completions }: OpenAiRouteDeps): { router: express.Router; errorHandler: ErrorRequestHandler } {
  const router = express.Router();

  const authenticate: RequestHandler = (req, res, next) => {
    const token = bearerTokenOf(req.get('authorization'));
    if (!token) throw new Unauthorized('send your API key as "Authorization: Bearer atn_…" (create one with POST /api/me/api-keys)', 'invalid_api_key');
    res.locals.principal = auth.authenticate(token);
    next();
  };
  const limiter = createUserRateLimiter({ max: config.chatRateLimit, windowMs: config.chatRateWindowSeconds * 1000, what: 'chat completions' });

  router.get('/models', authenticate, (_req, res) => {
    res.json({ object: 'list', data: completions.models().map((m) => ({ id: m.id, object: 'model', created: m.created, owned_by: 'attune' })) });
  });

  router.post('/chat/completions', authenticate, limiter, async (req: Request, res: Response) => {
    const input = parseBody(req.body);
    const userId = res.locals.principal!.user.id;
    const controller = new AbortController();
    // The client went away before the answer was complete: stop generating for nobody.
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const c = completions.start(userId, input, controller.signal);
    const head = { id: c.id, created: c.created, model: c.model, system_fingerprint: c.userModelVersion ? `um_${c.userModelVersion}` : null };

    if (!input.stream) {
      let r: Awaited<StartedCompletion['stream']['result']>;
      try {
        r = await c.stream.result;
      } catch (e) {
        if (controller.signal.aborted) return;
        // As mid-stream below (and in a chat turn): the engine's own error stays in the log; a
        // sampler's bad_argument here is a fault of ours, not of the request.
        req.log.error({ err: e }, 'generation failed');
        throw new ServiceUnavailable('the model failed to answer; try again', 'generation_failed');
      }
      if (controller.signal.aborted) return;
      res.json({
        ...head,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: r.text, refusal: null }, logprobs: null, finish_reason: openAiFinishReason(r.finishReason) }],
        usage: usageOf(r),
      });
      return;
    }

    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
      ...head,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    });
    try {
      sse(res, chunk({ role: 'assistant', content: '' }, null));
      for await (const delta of c.stream) {
        if (controller.signal.aborted) break;
        sse(res, chunk({ content: delta }, null));
      }
      const r = await c.stream.result;
      if (controller.signal.aborted) return;
      sse(res, chunk({}, openAiFinishReason(r.finishReason)));
      if (input.stream_options?.include_usage) sse(res, { ...head, object: 'chat.completion.chunk', choices: [], usage: usageOf(r) });
    } catch (e) {
      req.log.error({ err: e }, 'generation failed mid-stream');
      // The status line is gone; OpenAI's clients read an error event in the stream as the failure.
      sse(res, { error: { message: 'the model failed to answer', type: 'server_error', code: 'generation_failed', param: null } });
    }
    sse(res, '[DONE]');
    res.end();
  });

  router.use((req, _res, next) => next(new NotFound(`no route for ${req.method} /v1${req.path}`, 'unknown_url')));

  // The same mapping as the /api error handler (body-parser's 400/413/415 included), in OpenAI's shape.
  const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
    const e = toAppError(err);
    if (res.headersSent) {
      req.log.error({ err }, 'error after the response started');
      res.end();
      return;
    }
    if (!e) {
      req.log.error({ err }, 'unhandled error');
      res.status(500).json({ error: { message: 'internal server error', type: 'server_error', code: 'internal', param: null } } satisfies OpenAiErrorBody);
      return;
    }
    setErrorHeaders(res, e, err);
    res.status(e.status).json(openAiError(e));
  };
  return { router, errorHandler };
}
