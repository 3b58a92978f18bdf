// conversations and their messages. Every conversation query takes the owner's id, so a conversation
// of another user is indistinguishable from a missing one.
import type { Db } from './connection.ts';
import { fromJson, type JsonObject, toJson } from './json.ts';

export interface ConversationRecord {
  id: string;
  userId: string;
  title: string;
  createdAt: number;
  updatedAt: number;
}

interface ConversationRow {
  id: string;
  user_id: string;
  title: string;
  created_at: number;
  updated_at: number;
}

const toConversation = (r: ConversationRow): ConversationRecord => ({ id: r.id, userId: r.user_id, title: r.title, createdAt: r.created_at, updatedAt: r.updated_at });

export const MESSAGE_ROLES = ['system', 'user', 'assistant'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];
export const MESSAGE_STATUSES = ['complete', 'partial', 'error'] as const;
export type MessageStatus = (typeof MESSAGE_STATUSES)[number];

export interface MessageRecord {
  id: string;
  conversationId: string;
  parentId: string | null;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  finishReason: string | null;
  /** The base model that wrote an answer: its directory's name (column model_id). */
  modelName: string | null;
  userModelVersion: string | null;
  sampling: JsonObject | null;
  seed: number | null;
  createdAt: number;
}

interface MessageRow {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  role: MessageRole;
  content: string;
  status: MessageStatus;
  finish_reason: string | null;
  model_id: string | null;
  user_model_version: string | null;
  sampling: string | null;
  seed: number | null;
  created_at: number;
}

const toMessage = (r: MessageRow): MessageRecord => ({
  id: r.id,
  conversationId: r.conversation_id,
  parentId: r.parent_id,
  role: r.role,
  content: r.content,
  status: r.status,
  finishReason: r.finish_reason,
  modelName: r.model_id,
  userModelVersion: r.user_model_version,
  sampling: r.sampling === null ? null : fromJson<JsonObject>(r.sampling, 'messages.sampling'),
  seed: r.seed,
  createdAt: r.created_at,
});

/** Position in the newest-first list: the last item of the previous page. */
export interface ConversationCursor {
  updatedAt: number;
  id: string;
}

export type ConversationRepository = ReturnType<typeof createConversationRepository>;

export function createConversationRepository(db: Db) {
  const insert = db.prepare<[ConversationRow]>('INSERT INTO conversations (id, user_id, title, created_at, updated_at) VALUES (@id, @user_id, @title, @created_at, @updated_at)');
  const byIdForUser = db.prepare<[string, string], ConversationRow>('SELECT * FROM conversations WHERE id = ? AND user_id = ?');
  const firstPage = db.prepare<[string, number], ConversationRow>('SELECT * FROM conversations WHERE user_id = ? ORDER BY updated_at DESC, id DESC LIMIT ?');
  const nextPage = db.prepare<{ user_id: string; updated_at: number; id: string; limit: number }, ConversationRow>(
    `SELECT * FROM conversations
     WHERE user_id = @user_id AND (updated_at < @updated_at OR (updated_at = @updated_at AND id < @id))
     ORDER BY updated_at DESC, id DESC LIMIT @limit`,
  );
  // Search: the title or any message contains the text. LIKE's wildcards in the text are escaped.
  const search = db.prepare<{ user_id: string; pattern: string; updated_at: number | null; id: string; limit: number }, ConversationRow>(
    `SELECT c.* FROM conversations c
     WHERE c.user_id = @user_id
       AND (c.title LIKE @pattern ESCAPE '\\'
            OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content LIKE @pattern ESCAPE '\\'))
       AND (@updated_at IS NULL OR c.updated_at < @updated_at OR (c.updated_at = @updated_at AND c.id < @id))
     ORDER BY c.updated_at DESC, c.id DESC LIMIT @limit`,
  );
  const allForUser = db.prepare<[string], ConversationRow>('SELECT * FROM conversations WHERE user_id = ? ORDER BY created_at, id');
  const rename = db.prepare<[string, number, string, string]>('UPDATE conversations SET title = ?, updated_at = ? WHERE id = ? AND user_id = ?');
  const touch = db.prepare<[number, string]>('UPDATE conversations SET updated_at = max(updated_at, ?) WHERE id = ?');
  const remove = db.prepare<[string, string]>('DELETE FROM conversations WHERE id = ? AND user_id = ?');

  const insertMessage = db.prepare<[MessageRow]>(
    `INSERT INTO messages (id, conversation_id, parent_id, role, content, status, finish_reason, model_id, user_model_version, sampling, seed, created_at)
     VALUES (@id, @conversation_id, @parent_id, @role, @content, @status, @finish_reason, @model_id, @user_model_version, @sampling, @seed, @created_at)`,
  );
  const messageById = db.prepare<[string], MessageRow>('SELECT * FROM messages WHERE id = ?');
  const messagesOf = db.prepare<[string], MessageRow>('SELECT * FROM messages WHERE conversation_id = ? ORDER BY created_at, rowid');
  const finishMessage = db.prepare<{ id: string; content: string; status: MessageStatus; finish_reason: string | null }>(
    'UPDATE messages SET content = @content, status = @status, finish_reason = @finish_reason WHERE id = @id',
  );
  // Only a row still streaming: a late checkpoint never overwrites the finished answer.
  const checkpoint = db.prepare<[string, string]>("UPDATE messages SET content = ? WHERE id = ? AND status = 'partial' AND finish_reason IS NULL");

  return {
    insert(c: ConversationRecord): void {
      insert.run({ id: c.id, user_id: c.userId, title: c.title, created_at: c.createdAt, updated_at: c.updatedAt });
    },
    findForUser(id: string, userId: string): ConversationRecord | undefined {
      const r = byIdForUser.get(id, userId);
      return r && toConversation(r);
    },
    /** Newest first (by last activity), `limit` items after `after`; with `text`, only those whose title or messages contain it. */
    listForUser(userId: string, limit: number, after?: ConversationCursor, text?: string): ConversationRecord[] {
      if (text !== undefined) {
        const pattern = `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
        return search.all({ user_id: userId, pattern, updated_at: after?.updatedAt ?? null, id: after?.id ?? '', limit }).map(toConversation);
      }
      const rows = after ? nextPage.all({ user_id: userId, updated_at: after.updatedAt, id: after.id, limit }) : firstPage.all(userId, limit);
      return rows.map(toConversation);
    },
    /** Every conversation of the user, oldest first (data export). */
    listAllForUser: (userId: string): ConversationRecord[] => allForUser.all(userId).map(toConversation),
    rename: (id: string, userId: string, title: string, now: number): boolean => rename.run(title, now, id, userId).changes === 1,
    /** Marks activity (a new message) so the conversation moves to the top of the list. */
    touch: (id: string, now: number): void => void touch.run(now, id),
    /** Deletes the conversation with its messages, feedback, comparisons and derived pairs. */
    deleteForUser: (id: string, userId: string): boolean => remove.run(id, userId).changes === 1,

    insertMessage(m: MessageRecord): void {
      insertMessage.run({
        id: m.id,
        conversation_id: m.conversationId,
        parent_id: m.parentId,
        role: m.role,
        content: m.content,
        status: m.status,
        finish_reason: m.finishReason,
        model_id: m.modelName,
        user_model_version: m.userModelVersion,
        sampling: m.sampling === null ? null : toJson(m.sampling),
        seed: m.seed,
        created_at: m.createdAt,
      });
    },
    findMessage(id: string): MessageRecord | undefined {
      const r = messageById.get(id);
      return r && toMessage(r);
    },
    /** All messages of a conversation (every branch), oldest first. */
    listMessages: (conversationId: string): MessageRecord[] => messagesOf.all(conversationId).map(toMessage),
    /** The text streamed so far into an answer still being generated (crash safety). */
    checkpointMessage: (id: string, content: string): boolean => checkpoint.run(content, id).changes === 1,
    /** Final text and status of a streamed reply. */
    finishMessage: (id: string, content: string, status: MessageStatus, finishReason: string | null): boolean =>
      finishMessage.run({ id, content, status, finish_reason: finishReason }).changes === 1,
  };
}
