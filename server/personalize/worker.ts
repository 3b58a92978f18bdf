// Worker-thread entry of a retraining job: the P-DPO trainer runs here, off the serving thread, so
// chat keeps streaming while it trains. Messages: in, one TrainJobSpec (workerData) and at most a
// { type: 'cancel' }; out, TrainerEvents, then { type: 'done', result } or { type: 'error', message }.
// A cancel stops the trainer at its next step or batch and the thread ends by itself: terminating it
// from outside while onnxruntime runs here would abort the whole process.
import os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { runTrainJob, type TrainJobSpec, type WorkerCommand, type WorkerMessage } from './trainer.ts';

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

const controller = new AbortController();
const onCommand = (m: WorkerCommand) => {
  if (m.type === 'cancel') controller.abort();
};
port.on('message', onCommand);
const post = (m: WorkerMessage, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);

try {
  const result = await runTrainJob(spec, (e) => post(e), controller.signal);
  post({ type: 'done', result }, [result.blob.buffer as ArrayBuffer]);
} catch (err) {
  post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
} finally {
  // The listener is all that keeps this thread alive once the job has ended.
  port.off('message', onCommand);
}
