// The admin dashboard: users, feedback volume, the preference dataset, and retraining (jobs with a
// live view, versions with publish/rollback, per-user held-out accuracy, the schedule). A section whose
// endpoints this server lacks says so instead of showing anything made up.
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, errorText, isMissing } from '../api.ts';
import type { AttuneSocket } from '../socket.ts';
import { accuracyColumns, formatEta, lossColumns, mergeHistory, perUserBars, progressFraction, progressLabel, volumeColumns } from '../lib/charts.ts';
import type { AdminUser, AdminUserPage, FeedbackStats, TrainingJob, TrainingProgressEvent, TrainingSchedule, TrainingVersion, User, VersionMetrics } from '../lib/types.ts';
import { Chart } from './Chart.tsx';
import { useNotify } from './notices.tsx';
import { formatPct, formatTime } from './Personalization.tsx';

type Load<T> = { state: 'loading' } | { state: 'missing' } | { state: 'error'; message: string } | { state: 'ok'; data: T };

function useLoad<T>(path: string): [Load<T>, () => Promise<void>] {
  const [value, setValue] = useState<Load<T>>({ state: 'loading' });
  const reload = useCallback(async () => {
    try {
      setValue({ state: 'ok', data: await api<T>('GET', path) });
    } catch (e) {
      setValue(isMissing(e) ? { state: 'missing' } : { state: 'error', message: errorText(e) });
    }
  }, [path]);
  useEffect(() => void reload(), [reload]);
  return [value, reload];
}

function Unavailable({ what, load }: { what: string; load: Load<unknown> }) {
  if (load.state === 'loading') return <p aria-busy="true">Loading…</p>;
  if (load.state === 'missing')
    return (
      <p class="unavailable" data-testid="unavailable">
        {what} is not available on this server yet.
      </p>
    );
  if (load.state === 'error')
    return (
      <p class="unavailable" role="alert">
        {what} could not be loaded: {load.message}
      </p>
    );
  return null;
}

export function Admin({ me, socket }: { me: User; socket: AttuneSocket }) {
  return (
    <div class="panel-page admin">
      <h1>Admin</h1>
      <Training socket={socket} />
      <FeedbackVolume />
      <Users me={me} />
      <section class="card" aria-labelledby="a-export">
        <h2 id="a-export">Preference dataset</h2>
        <p>Every preference pair (A/B choices and thumbs on regenerated answers) as JSON Lines in TRL's conversational format.</p>
        <a class="button" href="/api/admin/export/preferences" download="preferences.jsonl" data-testid="export-preferences">
          Download preferences.jsonl
        </a>
      </section>
    </div>
  );
}

function Users({ me }: { me: User }) {
  const notify = useNotify();
  const [load] = useLoad<AdminUserPage>('/api/admin/users?limit=100');
  const [users, setUsers] = useState<AdminUser[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  useEffect(() => {
    if (load.state !== 'ok') return;
    setUsers(load.data.items);
    setCursor(load.data.nextCursor);
  }, [load]);
  const more = async () => {
    if (!cursor) return;
    try {
      const page = await api<AdminUserPage>('GET', `/api/admin/users?limit=100&cursor=${encodeURIComponent(cursor)}`);
      setUsers((us) => [...us, ...page.items.filter((u) => !us.some((x) => x.id === u.id))]);
      setCursor(page.nextCursor);
    } catch (e) {
      notify(errorText(e));
    }
  };
  const update = async (u: AdminUser, body: { role?: 'user' | 'admin'; disabled?: boolean }) => {
    try {
      const updated = await api<AdminUser>('PATCH', `/api/admin/users/${u.id}`, body);
      setUsers((us) => us.map((x) => (x.id === u.id ? updated : x)));
    } catch (e) {
      notify(errorText(e));
    }
  };
  return (
    <section class="card" aria-labelledby="a-users">
      <h2 id="a-users">Users{load.state === 'ok' ? ` (${load.data.total})` : ''}</h2>
      <Unavailable what="The user list" load={load} />
      {load.state === 'ok' && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Role</th>
                <th scope="col">Status</th>
                <th scope="col">Conversations</th>
                <th scope="col">Votes</th>
                <th scope="col">A/B</th>
                <th scope="col">Pairs</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {users.map((u) => (
                <tr key={u.id} data-username={u.username}>
                  <th scope="row">{u.username}</th>
                  <td>{u.role}</td>
                  <td>{u.disabled ? 'disabled' : 'active'}</td>
                  <td>{u.counts.conversations}</td>
                  <td>{u.counts.feedback}</td>
                  <td>{u.counts.comparisons}</td>
                  <td>{u.counts.preferencePairs}</td>
                  <td class="actions">
                    <button type="button" disabled={u.id === me.id} onClick={() => update(u, { role: u.role === 'admin' ? 'user' : 'admin' })} aria-label={`${u.role === 'admin' ? 'Demote' : 'Promote'} ${u.username}`}>
                      {u.role === 'admin' ? 'Demote' : 'Promote'}
                    </button>
                    <button type="button" disabled={u.id === me.id} onClick={() => update(u, { disabled: !u.disabled })} aria-label={`${u.disabled ? 'Enable' : 'Disable'} ${u.username}`}>
                      {u.disabled ? 'Enable' : 'Disable'}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {cursor && (
            <button type="button" onClick={more}>
              Load more users
            </button>
          )}
        </div>
      )}
    </section>
  );
}

function FeedbackVolume() {
  const [days, setDays] = useState(30);
  const [load] = useLoad<FeedbackStats>(`/api/admin/stats/feedback?days=${days}`);
  const columns = useMemo(
    () =>
      load.state === 'ok'
        ? volumeColumns(load.data.daily.map((d) => ({ t: d.day, up: d.up, down: d.down, comparisons: d.comparisons.A + d.comparisons.B + d.comparisons.tie + d.comparisons.both_bad })))
        : volumeColumns([]),
    [load],
  );
  return (
    <section class="card" aria-labelledby="a-volume">
      <h2 id="a-volume">Feedback volume</h2>
      <label for="volume-days">Window</label>{' '}
      <select id="volume-days" value={String(days)} onChange={(e) => setDays(Number(e.currentTarget.value))}>
        <option value="7">7 days</option>
        <option value="30">30 days</option>
        <option value="90">90 days</option>
        <option value="365">365 days</option>
      </select>
      <Unavailable what="Feedback statistics" load={load} />
      {load.state === 'ok' && (
        <>
          <p>
            Totals: {load.data.totals.up} up votes, {load.data.totals.down} down votes, {load.data.totals.comparisons.A + load.data.totals.comparisons.B + load.data.totals.comparisons.tie + load.data.totals.comparisons.both_bad} A/B choices,{' '}
            {load.data.totals.pairs.ab + load.data.totals.pairs.regenerate} preference pairs.
          </p>
          <Chart
            title="Feedback per day"
            testId="chart-volume"
            columns={columns}
            time
            xLabel="Day (UTC)"
            yLabel="Count"
            series={[
              { label: 'Thumbs up', color: '#2e9d5b' },
              { label: 'Thumbs down', color: '#d1453b' },
              { label: 'A/B choices', color: '#3b73d1' },
            ]}
          />
        </>
      )}
    </section>
  );
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

function Training({ socket }: { socket: AttuneSocket }) {
  const notify = useNotify();
  const [jobsLoad, reloadJobs] = useLoad<{ jobs: TrainingJob[] }>('/api/admin/training/jobs');
  const [versionsLoad, reloadVersions] = useLoad<{ versions: TrainingVersion[] }>('/api/admin/training/versions');
  const [jobs, setJobs] = useState<TrainingJob[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [history, setHistory] = useState<unknown[]>([]);
  const [live, setLive] = useState<TrainingProgressEvent[]>([]);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (jobsLoad.state === 'ok') setJobs(jobsLoad.data.jobs);
  }, [jobsLoad]);
  // Follow the newest job unless the admin picked one.
  // ISO-8601 times in UTC sort as text.
  const sorted = useMemo(() => [...jobs].sort((a, b) => b.createdAt.localeCompare(a.createdAt)), [jobs]);
  const current = jobs.find((j) => j.id === selected) ?? sorted[0] ?? null;

  const loadDetail = useCallback(async (id: string) => {
    try {
      const d = await api<{ job: TrainingJob; history: unknown[] }>('GET', `/api/admin/training/jobs/${id}`);
      setHistory(d.history);
      setLive([]);
      setJobs((js) => js.map((j) => (j.id === id ? d.job : j)));
    } catch (e) {
      notify(errorText(e));
    }
  }, [notify]);

  const currentId = current?.id ?? null;
  /** The job shown, for the socket handlers registered once. */
  const currentIdRef = useRef<string | null>(null);
  currentIdRef.current = currentId;
  useEffect(() => {
    setHistory([]);
    setLive([]);
    if (currentId) void loadDetail(currentId);
  }, [currentId, loadDetail]);

  useEffect(() => {
    const onProgress = (e: TrainingProgressEvent) => {
      const { jobId: _jobId, ...progress } = e;
      setJobs((js) => js.map((j) => (j.id === e.jobId ? { ...j, progress: { ...j.progress, ...progress } } : j)));
      if (e.jobId === currentIdRef.current) setLive((l) => [...l, e]);
    };
    const onJob = ({ job }: { job: TrainingJob }) => {
      setJobs((js) => (js.some((j) => j.id === job.id) ? js.map((j) => (j.id === job.id ? job : j)) : [job, ...js]));
      if (TERMINAL.has(job.status)) {
        void reloadVersions();
        if (job.id === currentIdRef.current) void loadDetail(job.id);
      }
    };
    socket.on('training:progress', onProgress);
    socket.on('training:job', onJob);
    return () => {
      socket.off('training:progress', onProgress);
      socket.off('training:job', onJob);
    };
  }, [socket, reloadVersions, loadDetail]);
  

  const trigger = async () => {
    setBusy(true);
    try {
      const { job } = await api<{ job: TrainingJob }>('POST', '/api/admin/training/jobs', {});
      setJobs((js) => [job, ...js.filter((j) => j.id !== job.id)]);
      setSelected(job.id);
      notify('Retraining queued.', 'info');
    } catch (e) {
      notify(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const cancel = async (job: TrainingJob) => {
    try {
      const r = await api<{ job: TrainingJob }>('POST', `/api/admin/training/jobs/${job.id}/cancel`, {});
      setJobs((js) => js.map((j) => (j.id === job.id ? r.job : j)));
    } catch (e) {
      notify(errorText(e));
    }
  };

  const points = useMemo(() => mergeHistory(history, live), [history, live]);
  const lossCols = useMemo(() => lossColumns(points), [points]);
  const accCols = useMemo(() => accuracyColumns(points), [points]);

  return (
    <section class="card" aria-labelledby="a-training">
      <h2 id="a-training">Retraining (P-DPO)</h2>
      <Unavailable what="Retraining" load={jobsLoad} />
      {jobsLoad.state === 'ok' && (
        <>
          <div class="row">
            <button type="button" class="primary" disabled={busy} onClick={trigger} data-testid="trigger-retrain">
              Retrain now
            </button>
            <button type="button" onClick={() => { void reloadJobs(); void reloadVersions(); }}>
              Refresh
            </button>
          </div>
          {current ? (
            <div class="job" data-testid="job-view" data-job-id={current.id} data-status={current.status}>
              <h3>
                Job {current.id.slice(0, 8)} · <span class={`status status-${current.status}`} data-testid="job-status">{current.status}</span>
              </h3>
              <p class="muted">
                Trigger: {current.trigger} · created {formatTime(current.createdAt)}
                {current.finishedAt ? ` · finished ${formatTime(current.finishedAt)}` : ''}
                {current.versionId ? ` · version ${current.versionId}` : ''}
              </p>
              {current.error && <p class="error">{current.error}</p>}
              <label for="job-progress">
                Progress: {progressLabel(current.progress)} · ETA {current.status === 'running' ? formatEta(current.progress?.etaSeconds) : '—'}
              </label>
              <progress id="job-progress" max={1} value={current.status === 'succeeded' ? 1 : progressFraction(current.progress)} data-testid="job-progress" />
              {!TERMINAL.has(current.status) && (
                <button type="button" class="danger" onClick={() => cancel(current)}>
                  Cancel job
                </button>
              )}
              <div class="charts">
                <Chart title="DPO loss" testId="chart-loss" columns={lossCols} xLabel="Step" yLabel="Loss" series={[{ label: 'Loss', color: '#d1453b' }]} />
                <Chart title="Reward accuracy" testId="chart-accuracy" columns={accCols} xLabel="Step" yLabel="%" yRange={[0, 100]} series={[{ label: 'Accuracy %', color: '#2e9d5b' }]} />
              </div>
            </div>
          ) : (
            <p class="muted">No retraining job yet.</p>
          )}
          {sorted.length > 1 && (
            <details>
              <summary>All jobs ({sorted.length})</summary>
              <ul class="jobs">
                {sorted.map((j) => (
                  <li key={j.id}>
                    <button type="button" class="link" aria-pressed={j.id === current?.id} onClick={() => setSelected(j.id)}>
                      {j.id.slice(0, 8)} · {j.status} · {formatTime(j.createdAt)}
                    </button>
                  </li>
                ))}
              </ul>
            </details>
          )}
        </>
      )}
      <Versions load={versionsLoad} reload={reloadVersions} />
      <Schedule />
    </section>
  );
}

/** The fields of a version's free-form metrics that the dashboard shows. */
const metricsOf = (v: TrainingVersion | undefined): VersionMetrics => (v?.metrics ?? {}) as VersionMetrics;

function Versions({ load, reload }: { load: Load<{ versions: TrainingVersion[] }>; reload: () => Promise<void> }) {
  const notify = useNotify();
  const [shown, setShown] = useState<string | null>(null);
  if (load.state !== 'ok') return <Unavailable what="User-model versions" load={load} />;
  const versions = load.data.versions;
  const version = versions.find((v) => v.id === shown) ?? versions.find((v) => v.current) ?? versions[0];
  const publish = async (v: TrainingVersion) => {
    try {
      await api('POST', `/api/admin/training/versions/${v.id}/publish`, {});
      notify(`Version ${v.id} published.`, 'info');
      await reload();
    } catch (e) {
      notify(errorText(e));
    }
  };
  const bars = perUserBars(metricsOf(version).perUser ?? []);
  return (
    <div class="versions">
      <h3>Versions</h3>
      {versions.length === 0 ? (
        <p class="muted">No user-model version yet.</p>
      ) : (
        <div class="table-wrap">
          <table data-testid="versions">
            <thead>
              <tr>
                <th scope="col">Version</th>
                <th scope="col">Created</th>
                <th scope="col">Status</th>
                <th scope="col">Held-out accuracy</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {versions.map((v) => (
                <tr key={v.id} data-version-id={v.id} data-current={v.current}>
                  <th scope="row">
                    <span title={v.id}>{v.id.slice(0, 8)}</span> {v.current && <span class="badge badge-personal">current</span>}
                  </th>
                  <td>{formatTime(v.createdAt)}</td>
                  <td title={v.reason ?? undefined}>{v.status}</td>
                  <td>{formatPct(metricsOf(v).heldoutAccuracy)}</td>
                  <td class="actions">
                    <button type="button" class="link" onClick={() => setShown(v.id)} aria-pressed={version?.id === v.id}>
                      Per-user accuracy
                    </button>
                    {!v.current && (
                      <button type="button" onClick={() => publish(v)} data-testid="publish">
                        {v.publishedAt ? 'Roll back to this' : 'Publish'}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {version && (
        <Chart
          title={`Held-out accuracy per user · version ${version.id.slice(0, 8)}`}
          testId="chart-per-user"
          columns={bars.columns}
          categories={bars.labels}
          xLabel="User"
          yLabel="%"
          yRange={[0, 100]}
          series={[{ label: 'Accuracy %', color: '#3b73d1', bars: true }]}
        />
      )}
    </div>
  );
}

function Schedule() {
  const notify = useNotify();
  const [load, reload] = useLoad<TrainingSchedule>('/api/admin/training/schedule');
  const [form, setForm] = useState<TrainingSchedule | null>(null);
  useEffect(() => {
    if (load.state === 'ok') setForm(load.data);
  }, [load]);
  if (load.state !== 'ok' || !form) return <Unavailable what="The retraining schedule" load={load} />;
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      await api('PUT', '/api/admin/training/schedule', { cron: form.cron, minNewPairs: form.minNewPairs, perUserMinPairs: form.perUserMinPairs, enabled: form.enabled });
      notify('Schedule saved.', 'info');
      await reload();
    } catch (err) {
      notify(errorText(err));
    }
  };
  return (
    <form class="schedule" onSubmit={save} aria-labelledby="a-schedule">
      <h3 id="a-schedule">Schedule</h3>
      <label class="check">
        <input type="checkbox" checked={form.enabled} onChange={(e) => setForm({ ...form, enabled: e.currentTarget.checked })} />
        Retrain on a schedule
      </label>
      <label for="s-cron">Cron expression</label>
      <input id="s-cron" value={form.cron} onInput={(e) => setForm({ ...form, cron: e.currentTarget.value })} />
      <label for="s-min-new">Least new pairs to start a run</label>
      <input id="s-min-new" type="number" min="0" value={form.minNewPairs} onInput={(e) => setForm({ ...form, minNewPairs: Number(e.currentTarget.value) })} />
      <label for="s-per-user">Least pairs for a user to be trained</label>
      <input id="s-per-user" type="number" min="0" value={form.perUserMinPairs} onInput={(e) => setForm({ ...form, perUserMinPairs: Number(e.currentTarget.value) })} />
      <p class="muted">Next run: {formatTime(form.nextRunAt)}</p>
      <button type="submit">Save schedule</button>
    </form>
  );
}
