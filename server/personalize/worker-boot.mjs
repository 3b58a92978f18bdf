// Worker threads do not inherit the tsx loader of the main thread, so the retraining worker starts
// here: register tsx in this thread, then load the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
