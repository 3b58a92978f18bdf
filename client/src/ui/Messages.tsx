// One message of the thread: the user's, an answer (markdown, provenance badge, siblings, thumbs),
// or an A/B comparison shown side by side.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, errorText } from '../api.ts';
import type { SiblingInfo } from '../lib/tree.ts';
import type { ComparisonState } from '../lib/stream.ts';
import type { Candidate, ComparisonChoice, Feedback, FeedbackValue, Message } from '../lib/types.ts';
import { renderMarkdown } from '../markdown.ts';
import { Regenerate, StopSquare, ThumbDown, ThumbUp } from './icons.tsx';
import { useNotify } from './notices.tsx';

export interface Nav {
  info: SiblingInfo;
  onPrev?: () => void;
  onNext?: () => void;
}

function SiblingNav({ nav, what }: { nav: Nav; what: string }) {
  if (nav.info.count < 2) return null;
  return (
    <span class="siblings" role="group" aria-label={`${what} versions`}>
      <button type="button" class="icon" aria-label={`Previous ${what}`} disabled={!nav.onPrev} onClick={nav.onPrev}>
        ‹
      </button>
      <span data-testid="sibling-position">
        {nav.info.index}/{nav.info.count}
      </span>
      <button type="button" class="icon" aria-label={`Next ${what}`} disabled={!nav.onNext} onClick={nav.onNext}>
        ›
      </button>
    </span>
  );
}

export function UserMessage({ message, nav }: { message: Message; nav: Nav }) {
  return (
    <article class="msg msg-user" data-message-id={message.id} aria-label="Your message">
      <div class="bubble">{message.content}</div>
      <div class="msg-meta">
        <SiblingNav nav={nav} what="message" />
      </div>
    </article>
  );
}

function Markdown({ text }: { text: string }) {
  const html = useMemo(() => renderMarkdown(text), [text]);
  // Sanitized by DOMPurify in renderMarkdown.
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />;
}

const shortVersion = (v: string) => (v.length > 12 ? v.slice(0, 8) : v);

export function PersonalizationBadge({ message }: { message: Message }) {
  const v = message.userModelVersion;
  return v ? (
    <span class="badge badge-personal" data-testid="badge" data-version={v} title={`Personalized with your user model, version ${v}`}>
      Personalized · v{shortVersion(v)}
    </span>
  ) : (
    <span class="badge" data-testid="badge" data-version="" title="Answered by the shared model without personalization">
      Generic
    </span>
  );
}

function statusNote(m: Message, streaming: boolean, stopping: boolean): string | null {
  if (streaming) return stopping ? 'Stopping…' : null;
  if (m.status === 'partial') return m.finishReason === 'abort' ? 'Stopped' : 'Interrupted';
  if (m.status === 'error') return 'The model failed to answer';
  return null;
}

export function AssistantMessage(props: {
  message: Message;
  nav: Nav;
  streaming: boolean;
  stopping: boolean;
  comparisonNote: { candidate: Candidate; choice: ComparisonChoice | null } | null;
  onStop: () => void;
  onRegenerate: () => void;
}) {
  const m = props.message;
  const note = statusNote(m, props.streaming, props.stopping);
  return (
    <article class="msg msg-assistant" data-message-id={m.id} data-status={props.streaming ? 'streaming' : m.status} aria-label="Answer" aria-busy={props.streaming}>
      {m.content === '' && props.streaming ? <p class="typing" aria-label="Thinking">…</p> : <Markdown text={m.content} />}
      <div class="msg-meta">
        <SiblingNav nav={props.nav} what="answer" />
        <PersonalizationBadge message={m} />
        {props.comparisonNote && (
          <span class="badge" title="This answer came from an A/B comparison">
            A/B {props.comparisonNote.candidate}
            {props.comparisonNote.choice === props.comparisonNote.candidate ? ' · chosen' : props.comparisonNote.choice === 'tie' ? ' · tie' : props.comparisonNote.choice === 'both_bad' ? ' · both bad' : ''}
          </span>
        )}
        {note && (
          <span class="status-note" data-testid="status-note">
            {note}
          </span>
        )}
        <span class="spacer" />
        {props.streaming ? (
          <button type="button" onClick={props.onStop} aria-label="Stop this answer">
            <StopSquare /> Stop
          </button>
        ) : (
          <>
            <FeedbackControls message={m} />
            <button type="button" class="icon" aria-label="Regenerate this answer" title="Regenerate" onClick={props.onRegenerate} data-testid="regenerate">
              <Regenerate />
            </button>
          </>
        )}
      </div>
    </article>
  );
}

export const UP_REASONS = ['helpful', 'accurate', 'clear', 'concise', 'detailed', 'creative', 'good_tone', 'other'] as const;
export const DOWN_REASONS = ['unhelpful', 'inaccurate', 'unclear', 'too_long', 'too_short', 'off_topic', 'bad_tone', 'unsafe', 'other'] as const;
const reasonLabel = (r: string) => r.replace('_', ' ');

function FeedbackControls({ message }: { message: Message }) {
  const notify = useNotify();
  const known = message.feedback;
  const [fb, setFb] = useState<Pick<Feedback, 'value' | 'reasons' | 'comment'> | null>(known ?? null);
  const [open, setOpen] = useState(false);
  const [reasons, setReasons] = useState<string[]>(known?.reasons ?? []);
  const [comment, setComment] = useState(known?.comment ?? '');
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // The conversation detail carries the vote; only a message without that field asks for it.
    if (known !== undefined) return;
    let live = true;
    api<Feedback>('GET', `/api/messages/${message.id}/feedback`).then(
      (f) => {
        if (!live) return;
        setFb(f);
        setReasons(f.reasons);
        setComment(f.comment ?? '');
      },
      (e) => {
        if (!(e instanceof ApiError && e.status === 404)) notify(errorText(e));
      },
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [message.id, notify]);

  const put = async (value: FeedbackValue, rs: string[], c: string) => {
    setBusy(true);
    try {
      const f = await api<Feedback>('PUT', `/api/messages/${message.id}/feedback`, { value, reasons: rs, comment: c.trim() || null });
      setFb(f);
      return f;
    } catch (e) {
      notify(errorText(e));
      return null;
    } finally {
      setBusy(false);
    }
  };

  const thumb = async (value: FeedbackValue) => {
    if (fb?.value === value) {
      setBusy(true);
      try {
        await api('DELETE', `/api/messages/${message.id}/feedback`);
        setFb(null);
        setOpen(false);
        setReasons([]);
        setComment('');
      } catch (e) {
        notify(errorText(e));
      } finally {
        setBusy(false);
      }
      return;
    }
    // Reasons of the other thumb do not carry over.
    const allowed: readonly string[] = value === 'up' ? UP_REASONS : DOWN_REASONS;
    const kept = reasons.filter((r) => allowed.includes(r));
    setReasons(kept);
    if (await put(value, kept, comment)) setOpen(true);
  };

  const save = async (e: Event) => {
    e.preventDefault();
    if (!fb) return;
    if (await put(fb.value, reasons, comment)) {
      setOpen(false);
      notify('Thanks for the feedback.', 'info');
    }
  };

  const choices = fb?.value === 'down' ? DOWN_REASONS : UP_REASONS;
  return (
    <span class="feedback">
      <button type="button" class="icon" aria-label="Good answer" aria-pressed={fb?.value === 'up'} title="Good answer" disabled={busy} onClick={() => thumb('up')} data-testid="thumb-up">
        <ThumbUp />
      </button>
      <button type="button" class="icon" aria-label="Bad answer" aria-pressed={fb?.value === 'down'} title="Bad answer" disabled={busy} onClick={() => thumb('down')} data-testid="thumb-down">
        <ThumbDown />
      </button>
      {fb && !open && (fb.reasons.length > 0 || fb.comment) && (
        <button type="button" class="link small" onClick={() => setOpen(true)} aria-label="Edit feedback details">
          {fb.reasons.map(reasonLabel).join(', ') || 'comment'}
        </button>
      )}
      {fb && !open && fb.reasons.length === 0 && !fb.comment && (
        <button type="button" class="link small" onClick={() => setOpen(true)}>
          Add a reason
        </button>
      )}
      {fb && open && (
        <form class="feedback-panel" onSubmit={save} aria-label="Feedback details" data-testid="feedback-panel">
          <fieldset>
            <legend>{fb.value === 'up' ? 'What was good?' : 'What went wrong?'}</legend>
            <div class="chips">
              {choices.map((r) => (
                <button
                  type="button"
                  key={r}
                  class="chip"
                  aria-pressed={reasons.includes(r)}
                  onClick={() => setReasons(reasons.includes(r) ? reasons.filter((x) => x !== r) : [...reasons, r])}
                  data-reason={r}
                >
                  {reasonLabel(r)}
                </button>
              ))}
            </div>
          </fieldset>
          <label for={`comment-${message.id}`}>Comment (optional)</label>
          <textarea id={`comment-${message.id}`} rows={2} maxLength={2000} value={comment} onInput={(e) => setComment(e.currentTarget.value)} />
          <div class="row">
            <button type="submit" class="primary" disabled={busy} data-testid="feedback-save">
              Save
            </button>
            <button type="button" onClick={() => setOpen(false)}>
              Close
            </button>
          </div>
        </form>
      )}
    </span>
  );
}

export function CompareBlock(props: {
  comparison: ComparisonState;
  a: Message;
  b: Message;
  streamingA: boolean;
  streamingB: boolean;
  onChoose: (choice: ComparisonChoice) => void;
}) {
  const [sent, setSent] = useState<ComparisonChoice | null>(null);
  const ready = props.comparison.ready && !props.streamingA && !props.streamingB;
  const choose = (c: ComparisonChoice) => {
    setSent(c);
    props.onChoose(c);
  };
  // A choice the server refused (error event) can be made again.
  useEffect(() => {
    if (sent === null) return;
    const t = setTimeout(() => setSent(null), 5000);
    return () => clearTimeout(t);
  }, [sent]);
  const column = (label: Candidate, m: Message, streaming: boolean) => (
    <div class="candidate" data-candidate={label} aria-busy={streaming}>
      <h3>Answer {label}</h3>
      {m.content === '' && streaming ? <p class="typing">…</p> : <Markdown text={m.content} />}
      <div class="msg-meta">
        <PersonalizationBadge message={m} />
        {!streaming && m.status !== 'complete' && <span class="status-note">{m.status === 'partial' ? 'Stopped' : 'Failed'}</span>}
      </div>
    </div>
  );
  return (
    <section class="compare" aria-label="Compare two answers" data-testid="compare" data-comparison-id={props.comparison.id}>
      <p class="compare-prompt">{ready ? 'Which answer do you prefer?' : 'Two answers are being written…'}</p>
      <div class="candidates">
        {column('A', props.a, props.streamingA)}
        {column('B', props.b, props.streamingB)}
      </div>
      <div class="compare-choices" role="group" aria-label="Your choice">
        <button type="button" class="primary" disabled={!ready || sent !== null} onClick={() => choose('A')} data-choice="A">
          A is better
        </button>
        <button type="button" class="primary" disabled={!ready || sent !== null} onClick={() => choose('B')} data-choice="B">
          B is better
        </button>
        <button type="button" disabled={!ready || sent !== null} onClick={() => choose('tie')} data-choice="tie">
          Tie
        </button>
        <button type="button" disabled={!ready || sent !== null} onClick={() => choose('both_bad')} data-choice="both_bad">
          Both are bad
        </button>
      </div>
    </section>
  );
}
