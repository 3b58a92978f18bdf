// Progress on stderr (stdout carries only the command's JSON): one bar at a time.
import cliProgress from 'cli-progress';
import type { JobProgressEvent } from './server-client.ts';

/** A figure for a bar or a log line: fixed digits, '-' when there is none yet. */
export const fmt = (x: number | null | undefined, digits = 3): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '-');

/** One bar at a time on stderr, replaced when the phase changes. */
export class PhaseBars {
  private bar: cliProgress.SingleBar | null = null;
  private phase = '';

  update(phase: string, done: number, total: number, payload: Record<string, string> = {}): void {
    if (phase !== this.phase || !this.bar) {
      this.stop();
      this.phase = phase;
      const fields = Object.keys(payload).map((k) => ` | ${k} {${k}}`).join('');
      this.bar = new cliProgress.SingleBar(
        { format: `  ${phase.padEnd(12)} [{bar}] {value}/{total}${fields} | ETA {eta_formatted}`, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000, etaBuffer: 20 },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(1, total), 0, payload);
    }
    this.bar.setTotal(Math.max(1, total));
    this.bar.update(done, payload);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = null;
    this.phase = '';
  }
}

/** A bar for a retraining job's progress on stderr (phase, step, loss, accuracy, ETA). */
export function jobProgressBar(): { update(p: JobProgressEvent): void; stop(): void } {
  let bar: cliProgress.SingleBar | null = null;
  let phase = '';
  const stop = () => {
    bar?.stop();
    bar = null;
  };
  return {
    update(p) {
      const ph = p.phase ?? 'queued';
      const training = ph === 'train';
      const value = training ? p.step ?? 0 : p.done ?? 0;
      const total = training ? p.totalSteps ?? 1 : p.total ?? 1;
      if (ph !== phase || !bar) {
        stop();
        phase = ph;
        bar = new cliProgress.SingleBar(
          { format: `  job ${ph.padEnd(9)} [{bar}] {value}/{total} | loss {loss} | acc {acc} | ETA {etaS}`, stream: process.stderr, noTTYOutput: true, notTTYSchedule: 5000 },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(1, total), 0, { loss: '-', acc: '-', etaS: '-' });
      }
      bar.setTotal(Math.max(1, total));
      bar.update(value, { loss: fmt(p.loss, 3), acc: fmt(p.accuracy, 2), etaS: typeof p.etaSeconds === 'number' ? `${Math.round(p.etaSeconds)}s` : '-' });
    },
    stop,
  };
}
