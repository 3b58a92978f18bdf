// Worker-thread entry of a retraining job: the P-DPO trainer runs here, off the serving thread, so
// chat keeps streaming while it trains. Messages: in, one TrainJobSpec; out, TrainerEvents, then
// { type: 'done', result } or { type: 'error', message }. Cancelling terminates the thread.
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { runTrainJob, type TrainJobSpec } from './trainer.ts';

const port = parentPort;
if (!port) throw new Error('personalize/worker.ts must run in a worker thread');

// Chat comes first: on Linux a nice value is per thread, so lowering this thread's priority before
// onnxruntime creates its thread pool puts the whole job behind the serving threads. The job still
// takes every idle cycle.
const spec = workerData as TrainJobSpec & { nice?: number };
try {
  if (spec.nice) os.setPriority(0, spec.nice);
} catch {
  // Not permitted here (some containers): train at normal priority.
}

try {
  const result = await runTrainJob(spec, (e) => port.postMessage(e));
  port.postMessage({ type: 'done', result }, [result.blob.buffer as ArrayBuffer]);
} catch (err) {
  port.postMessage({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
