// `npm run --silent cli -- retrain [--server URL] [--user ID …] [--wait]`: the admin trigger of a
// P-DPO retraining, through the server's admin API like any other client.
import { CliError, type CliEnv, parse, stringFlag } from '../flags.ts';
import { jobProgressBar } from '../progress.ts';
import {
  adminError, DEFAULT_SERVER_URL, findVersion, followTrainingJob, ServerClient, ServerError, signInAdmin, startTrainingJob, type TrainingJob,
} from '../server-client.ts';

/** The `--help` line of retrain. */
export const RETRAIN_USAGE = ['retrain [--server URL] [--user ID …] [--wait] [--token T | --admin-user U --admin-password P]'];

export async function retrain(argv: string[], env: CliEnv): Promise<unknown> {
  const f = parse(argv, {
    server: { type: 'string' }, user: { type: 'string', multiple: true }, wait: { type: 'boolean' }, token: { type: 'string' }, 'admin-user': { type: 'string' }, 'admin-password': { type: 'string' },
  });
  const users = Array.isArray(f.user) ? f.user : [];
  const userIds = users.flatMap((u) => u.split(',')).map((u) => u.trim());
  if (userIds.some((u) => u === '' || u.length > 100)) throw new CliError('--user: expected a user id (repeat --user for several)');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const client = new ServerClient(stringFlag(f, 'server') ?? DEFAULT_SERVER_URL, log);
  let token = stringFlag(f, 'token');
  let tokenFlag = '--token';
  if (token === '') throw new CliError('--token must not be empty');
  if (!token) {
    const password = stringFlag(f, 'admin-password') ?? env.ATTUNE_ADMIN_PASSWORD;
    if (!password) throw new CliError('--admin-password (or ATTUNE_ADMIN_PASSWORD, or --token) is required: retraining is an admin action');
    token = await signInAdmin(client, stringFlag(f, 'admin-user') ?? env.ATTUNE_ADMIN_USER ?? 'admin', password);
    tokenFlag = '--admin-password';
  }
  for (const id of userIds) {
    try {
      await client.request('GET', `/api/admin/users/${encodeURIComponent(id)}`, { token });
    } catch (e) {
      if (e instanceof ServerError && (e.status === 404 || e.status === 400)) throw new CliError(`--user ${id}: no such user on the server (${e.message})`);
      adminError(e, 'cannot look up the users', tokenFlag);
    }
  }
  const job = await startTrainingJob(client, token, userIds.length ? userIds : null, tokenFlag);
  if (!f.wait) return { job };
  log(`  retraining job ${job.id} started; following it (Ctrl-C stops following, not the job)`);
  const bar = jobProgressBar();
  let final: { job: TrainingJob; history: unknown[] };
  try {
    final = await followTrainingJob(client, token, job.id, (p) => bar.update(p));
  } finally {
    bar.stop();
  }
  const version = final.job.versionId ? await findVersion(client, token, final.job.versionId) : null;
  if (final.job.status !== 'succeeded') log(`  the job ended ${final.job.status}: ${final.job.error ?? ''}`);
  else if (version) log(`  version ${version.id}: ${version.status}${version.reason ? ` (${version.reason})` : ''}`);
  return { job: final.job, version };
}
