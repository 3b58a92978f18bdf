// Worker-thread entry of a retraining job: the P-DPO trainer runs here, off the serving thread, so
// chat keeps streaming while it trains. Messages: in, one TrainJobSpec; out, TrainerEvents, then
// { type: 'done', result } or { type: 'error', message }. Cancelling terminates the thread.
import { parentPort, workerData } from 'node:worker_threads';
import { runTrainJob, type TrainJobSpec } from './trainer.ts';

const port = parentPort;
if (!port) throw new Error('personalize/worker.ts must run in a worker thread');

try {
  const result = await runTrainJob(workerData as TrainJobSpec, (e) => port.postMessage(e));
  port.postMessage({ type: 'done', result }, [result.blob.buffer as ArrayBuffer]);
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
