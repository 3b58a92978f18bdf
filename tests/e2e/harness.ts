// End-to-end harness: a real Attune server (server/main.ts as a process, the default model, SQLite in a
// temp data dir) on loopback, and Debian's chromium driven by playwright-core. No browser download:
// the executable is /usr/bin/chromium (apt-get install chromium), overridable with ATTUNE_E2E_CHROMIUM.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { listeningPort } from '../helpers/process-server.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = path.join(ROOT, 'test-results', 'e2e');
// A test-only switch, read by the test process (never by the server).
export const CHROMIUM = process.env.ATTUNE_E2E_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface RunningAttune {
  url: string;
  adminPassword: string;
  dataDir: string;
  logs: string[];
  /** Stops the server (SIGTERM, as a deployment would) and starts it again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

interface ServerProcess {
  port: number;
  stop(): Promise<void>;
}

/** server/main.ts as a process on `port` (0: a free one); resolves once it listens. */
async function spawnServer(dataDir: string, port: number, adminPassword: string, env: Record<string, string>, logs: string[]): Promise<ServerProcess> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts', '--port', String(port), '--host', '127.0.0.1'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      // Passed through for debugging the server (--inspect and the like).
      ...(process.env.NODE_OPTIONS ? { NODE_OPTIONS: process.env.NODE_OPTIONS } : {}),
      ATTUNE_DATA_DIR: dataDir,
      ATTUNE_ADMIN_PASSWORD: adminPassword,
      ATTUNE_LOG_LEVEL: 'info',
      ATTUNE_CHAT_RATE_LIMIT: '1000',
      ATTUNE_AUTH_RATE_LIMIT: '1000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = await listeningPort(child, exited, logs, 120_000);
  return {
    port: listening,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Starts server/main.ts on a free loopback port with a fresh data dir; resolves once it listens. */
export async function startAttune(env: Record<string, string> = {}): Promise<RunningAttune> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-e2e-data-'));
  const adminPassword = 'e2e-admin-password';
  const logs: string[] = [];
  let proc = await spawnServer(dataDir, 0, adminPassword, env, logs);
  const port = proc.port;
  return {
    url: `http://127.0.0.1:${port}`,
    adminPassword,
    dataDir,
    logs,
    async restart() {
      await proc.stop();
      proc = await spawnServer(dataDir, port, adminPassword, env, logs);
    },
    async stop() {
      await proc.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  close(): Promise<void>;
}

/** A fresh chromium profile (temp --user-data-dir) with one page. */
export async function openBrowser(viewport = { width: 1280, height: 860 }): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-e2e-chromium-'));
  // launchPersistentContext passes the profile as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS.filter((f) => f !== '--headless'),
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}
