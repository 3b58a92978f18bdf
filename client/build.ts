// Builds the web client into client/dist with Vite's JS API.
//   tsx client/build.ts             build
//   tsx client/build.ts --if-stale  build only when dist is missing or older than the sources
// `npm start` runs the second form first (prestart), so a fresh checkout serves the app.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLIENT_DIR = fileURLToPath(new URL('.', import.meta.url));
export const DIST_DIR = path.join(CLIENT_DIR, 'dist');
const SOURCES = ['src', 'index.html', 'vite.config.ts', 'tsconfig.json'];

function newestMtime(p: string): number {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of fs.readdirSync(p)) newest = Math.max(newest, newestMtime(path.join(p, entry)));
  return newest;
}

/** Whether dist is missing or older than any source file. */
export function clientBuildIsStale(): boolean {
  const built = path.join(DIST_DIR, 'index.html');
  if (!fs.existsSync(built)) return true;
  const builtAt = fs.statSync(built).mtimeMs;
  return SOURCES.some((s) => newestMtime(path.join(CLIENT_DIR, s)) > builtAt);
}

export async function buildClient(): Promise<void> {
  // Imported here: a production install without dev dependencies serves an existing build.
  const { build } = await import('vite');
  await build({ configFile: path.join(CLIENT_DIR, 'vite.config.ts'), logLevel: 'warn' });
}

/** Builds when stale; returns whether it built. */
export async function ensureClientBuilt(): Promise<boolean> {
  if (!clientBuildIsStale()) return false;
  await buildClient();
  return true;
}

const isEntryPoint = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isEntryPoint) {
  const ifStale = process.argv.includes('--if-stale');
  const started = Date.now();
  try {
    if (ifStale && !clientBuildIsStale()) {
      process.stderr.write('web client: build is up to date\n');
    } else {
      process.stderr.write('web client: building with Vite…\n');
      await buildClient();
      process.stderr.write(`web client: built into ${path.relative(process.cwd(), DIST_DIR)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
  } catch (e) {
    const missingVite = e instanceof Error && /Cannot find (package|module) 'vite'/.test(e.message);
    if (missingVite && fs.existsSync(path.join(DIST_DIR, 'index.html'))) {
      process.stderr.write('web client: Vite is not installed (production install); serving the existing build\n');
    } else if (missingVite) {
      process.stderr.write('web client: Vite is not installed and there is no build: the server will answer the API only (run `npm ci` with dev dependencies, then `npm run build:client`)\n');
    } else {
      process.stderr.write(`web client: build failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    }
  }
}
