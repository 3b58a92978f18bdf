// The conversation tree as prompts: the path from the root down to a message is what the model saw
// (or would see) before answering under it.
import type { MessageRecord } from '../db/conversations.ts';
import type { ChatMessage } from '../lm/tokenizer.ts';

/** The messages from the root down to `leafId` (inclusive), as chat messages. */
export function pathTo(messages: readonly MessageRecord[], leafId: string): ChatMessage[] {
  const byId = new Map(messages.map((m) => [m.id, m]));
  const path: ChatMessage[] = [];
  for (let m = byId.get(leafId); m; m = m.parentId === null ? undefined : byId.get(m.parentId)) {
    // Failed answers with no text would only teach the model an empty turn.
    if (m.status === 'error' && m.content === '') continue;
    path.push({ role: m.role, content: m.content });
  }
  return path.reverse();
}
