// A fixed-window counter per key for socket events (express-rate-limit only speaks HTTP). Counters
// live in process memory, like the HTTP limiters.
import { RateLimited } from '../errors.ts';

export interface WindowLimiter {
  /** Counts one hit for `key`; throws RateLimited once the window's allowance is used up. */
  hit(key: string): void;
}

export function createWindowLimiter(opts: { max: number; windowMs: number; what: string; now?: () => number }): WindowLimiter {
  const now = opts.now ?? Date.now;
  const windows = new Map<string, { start: number; count: number }>();
  return {
    hit(key: string): void {
      const t = now();
      let w = windows.get(key);
      if (!w || t - w.start >= opts.windowMs) {
        // Forget finished windows now and then, so the map does not grow with every user ever seen.
        if (windows.size > 10_000) for (const [k, v] of windows) if (t - v.start >= opts.windowMs) windows.delete(k);
        w = { start: t, count: 0 };
        windows.set(key, w);
      }
      if (w.count >= opts.max) {
        const after = Math.max(1, Math.ceil((w.start + opts.windowMs - t) / 1000));
        throw new RateLimited(`too many ${opts.what}: try again in ${after} s`, { retryAfterSeconds: after, limit: opts.max, windowSeconds: Math.round(opts.windowMs / 1000) });
      }
      w.count++;
    },
  };
}
