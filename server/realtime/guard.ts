/// <reference lib="es2024.string" />
// The one gate every incoming socket packet passes before any listener sees it. socket.io hands a
// packet's arguments to listeners with `handler.apply(this, args)`, so a frame of 42,000 arguments
// overflows the stack there, and nested JSON thousands of levels deep would do the same to any
// recursive walk (zod's included). So the packet is checked here, as the array it arrived as and
// without recursion: a known event name, exactly one payload and no ack, a plain JSON payload within
// a depth and size bound, and only then zod. Strings are made well formed (each lone UTF-16
// surrogate becomes one U+FFFD) so that what is echoed is what SQLite stores.
import { type AppError, clipText, ValidationError, validationErrorOf } from '../errors.ts';
import { CLIENT_EVENT_SCHEMAS, type ClientEventName, type ClientPayload, type ErrorPayload, KNOWN_EVENTS, isKnownEvent } from './events.ts';

/** Deeper than any payload of the contract (sampling inside send is depth 2), shallow enough to walk. */
export const MAX_PAYLOAD_DEPTH = 8;
/** Values in one payload (objects, arrays and scalars); a send has about ten. */
export const MAX_PAYLOAD_VALUES = 1000;
/** How much of a refused event's name is shown back: enough to recognise a typo, never a flood. */
export const MAX_ECHOED_NAME = 64;
const MAX_ISSUES = 10;
const MAX_ISSUE_TEXT = 200;

export type CheckedPacket = { [E in ClientEventName]: { ok: true; event: E; payload: ClientPayload<E> } }[ClientEventName];

export interface RefusedPacket {
  ok: false;
  /** The event's name as it may be shown back (clipped). */
  event: string;
  error: AppError;
  /** The ack socket.io made for a packet that asked for one: it is answered with the error. */
  ack?: (e: ErrorPayload) => void;
}

const wellFormed = (s: string): string => s.toWellFormed();

/** A refused event's name, safe to put in an error: clipped, well formed, never an object. */
export function shownEventName(name: unknown): string {
  if (typeof name === 'string') return clipText(name, MAX_ECHOED_NAME);
  if (typeof name === 'number') return String(name);
  return '(not a string)';
}

const isPlainObject = (v: object): v is Record<string, unknown> => {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * Walks the payload with an explicit stack (never recursion), refusing it as soon as it is too deep,
 * too big or not plain JSON (socket.io's binary attachments arrive as Buffers), and makes its strings
 * well formed in place. Returns the payload (a new string when the payload itself is one), or why not.
 */
export function normaliseJsonPayload(root: unknown): { ok: true; value: unknown } | { ok: false; reason: string } {
  if (typeof root === 'string') return { ok: true, value: wellFormed(root) };
  if (root === null || typeof root === 'number' || typeof root === 'boolean') return { ok: true, value: root };
  if (typeof root !== 'object' || !(Array.isArray(root) || isPlainObject(root))) return { ok: false, reason: 'the payload must be JSON (binary attachments are not accepted)' };
  let values = 1;
  const stack: Array<{ node: unknown[] | Record<string, unknown>; depth: number }> = [{ node: root, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    const keys: Iterable<string | number> = Array.isArray(node) ? node.keys() : Object.keys(node);
    for (const k of keys) {
      if (++values > MAX_PAYLOAD_VALUES) return { ok: false, reason: `the payload holds more than ${MAX_PAYLOAD_VALUES} values` };
      const container = node as Record<string | number, unknown>;
      const v = container[k];
      if (typeof v === 'string') container[k] = wellFormed(v);
      else if (v === null || typeof v === 'number' || typeof v === 'boolean') continue;
      else if (typeof v === 'object' && (Array.isArray(v) || isPlainObject(v))) {
        if (depth >= MAX_PAYLOAD_DEPTH) return { ok: false, reason: `the payload is nested deeper than ${MAX_PAYLOAD_DEPTH} levels` };
        stack.push({ node: v, depth: depth + 1 });
      } else return { ok: false, reason: 'the payload must be JSON (binary attachments are not accepted)' };
    }
  }
  return { ok: true, value: root };
}

const refuse = (name: unknown, error: AppError, ack: RefusedPacket['ack']): RefusedPacket => ({ ok: false, event: shownEventName(name), error, ...(ack ? { ack } : {}) });

/**
 * Checks one incoming packet, `[event, ...args]` as socket.io's middleware sees it (with the ack
 * function socket.io appends when the client asked for one). Never recursive, never spreads `args`.
 */
export function checkPacket(packet: readonly unknown[]): CheckedPacket | RefusedPacket {
  const name = packet[0];
  const last = packet.length > 1 ? packet[packet.length - 1] : undefined;
  const ack = typeof last === 'function' ? (last as (e: ErrorPayload) => void) : undefined;
  if (!isKnownEvent(name)) {
    return refuse(name, new ValidationError(`unknown event: the events are ${[...KNOWN_EVENTS].join(', ')}`, { known: [...KNOWN_EVENTS] }, 'unknown_event'), ack);
  }
  if (ack) return refuse(name, new ValidationError('acknowledgements are not supported: the server answers with events', { arguments: packet.length - 1 }), ack);
  if (packet.length !== 2) {
    return refuse(name, new ValidationError(`an event carries exactly one payload, got ${packet.length - 1} arguments`, { arguments: packet.length - 1 }), undefined);
  }
  const json = normaliseJsonPayload(packet[1]);
  if (!json.ok) return refuse(name, new ValidationError(`invalid payload: ${json.reason}`, { issues: [{ path: '', message: json.reason }] }), undefined);
  const r = CLIENT_EVENT_SCHEMAS[name].safeParse(json.value);
  if (!r.success) {
    // zod's messages can quote what was sent (an unknown key, say), so each one is clipped.
    return refuse(name, validationErrorOf(r.error, { prefix: 'invalid payload: ', limit: { issues: MAX_ISSUES, chars: MAX_ISSUE_TEXT } }), undefined);
  }
  return { ok: true, event: name, payload: r.data } as CheckedPacket;
}
