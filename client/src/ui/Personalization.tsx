// The user's own page: what they have taught Attune, their user model's state, and their data.
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, download, errorText, isMissing } from '../api.ts';
import { toMs } from '../lib/charts.ts';
import type { PersonalizationStatus, User } from '../lib/types.ts';
import { useNotify } from './notices.tsx';

/** An ISO-8601 time from the server, in the reader's locale ('—' for none). */
export const formatTime = (t: string | null | undefined): string => {
  const ms = toMs(t);
  return ms === null ? '—' : new Date(ms).toLocaleString();
};
export const formatPct = (v: number | null | undefined): string => (typeof v === 'number' && Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : '—');

export function Personalization({ me, onDeleted }: { me: User; onDeleted: () => void }) {
  const notify = useNotify();
  const [status, setStatus] = useState<PersonalizationStatus | null | 'missing' | 'error'>(null);
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);

  const load = useCallback(async () => {
    try {
      setStatus(await api<PersonalizationStatus>('GET', '/api/me/personalization'));
    } catch (e) {
      if (isMissing(e)) setStatus('missing');
      else {
        setStatus('error');
        notify(errorText(e));
      }
    }
  }, [notify]);
  useEffect(() => void load(), [load]);

  const reset = async () => {
    if (!confirm('Reset your personalization? Your user model goes back to the generic one; your votes stay.')) return;
    setBusy(true);
    try {
      await api('DELETE', '/api/me/personalization');
      notify('Your personalization was reset.', 'info');
      await load();
    } catch (e) {
      notify(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const exportData = async () => {
    setBusy(true);
    try {
      const data = await api<unknown>('GET', '/api/me/export');
      download(`attune-${me.username}-${new Date().toISOString().slice(0, 10)}.json`, JSON.stringify(data, null, 2));
    } catch (e) {
      notify(isMissing(e) ? 'Export is not available on this server yet.' : errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const deleteAccount = async (e: Event) => {
    e.preventDefault();
    if (!confirm(`Delete the account “${me.username}” and all of its conversations, votes and personalization? This cannot be undone.`)) return;
    setBusy(true);
    try {
      await api('DELETE', '/api/me', { password });
      location.hash = '';
      onDeleted();
    } catch (err) {
      notify(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="panel-page">
      <h1>Your personalization</h1>
      <section class="card" aria-labelledby="p-status">
        <h2 id="p-status">What Attune has learned</h2>
        {status === null && <p aria-busy="true">Loading…</p>}
        {status === 'missing' && (
          <p class="unavailable" data-testid="personalization-unavailable">
            Personalization is not available on this server yet.
          </p>
        )}
        {status === 'error' && <p class="unavailable">The personalization status could not be loaded.</p>}
        {status && typeof status === 'object' && (
          <dl class="stats" data-testid="personalization-stats">
            <div>
              <dt>Votes</dt>
              <dd data-testid="stat-votes">{status.votes}</dd>
            </div>
            <div>
              <dt>A/B comparisons</dt>
              <dd data-testid="stat-comparisons">{status.comparisons}</dd>
            </div>
            <div>
              <dt>Preference pairs</dt>
              <dd>{status.pairs}</dd>
            </div>
            <div>
              <dt>Personalized</dt>
              <dd data-testid="stat-personalized">{status.personalized ? `Yes · version ${status.version?.id ?? '—'}` : 'Not yet (generic model)'}</dd>
            </div>
            <div>
              <dt>Last trained</dt>
              <dd data-testid="stat-last-trained">{formatTime(status.lastTrainedAt)}</dd>
            </div>
            <div>
              <dt>Held-out accuracy</dt>
              <dd title="How often your user model prefers the answer you chose, on votes it did not train on">{formatPct(status.heldoutAccuracy)}</dd>
            </div>
          </dl>
        )}
        <div class="row">
          <button type="button" disabled={busy || status === 'missing'} onClick={reset}>
            Reset my personalization
          </button>
          <button type="button" disabled={busy} onClick={exportData}>
            Export my data (JSON)
          </button>
        </div>
      </section>
      <section class="card danger-zone" aria-labelledby="p-delete">
        <h2 id="p-delete">Delete my account</h2>
        <p>Deletes your account with every conversation, vote and your user model.</p>
        <form onSubmit={deleteAccount} class="row">
          <label for="delete-password">Password</label>
          <input id="delete-password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          <button type="submit" class="danger" disabled={busy || password.length === 0}>
            Delete my account
          </button>
        </form>
      </section>
    </div>
  );
}
