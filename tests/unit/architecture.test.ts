// The layering rules of docs/DESIGN.md, read from the source itself with the TypeScript parser:
// every import (static, `import type`, re-exports and dynamic `import('…')`) of every .ts file under
// server/, cli/, sandbox/, bench/ and client/src, resolved to a file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SOURCE_DIRS = ['server', 'cli', 'sandbox', 'bench', 'client/src'];

function listTs(dir: string): string[] {
  const abs = path.join(ROOT, dir);
  if (!fs.existsSync(abs)) return [];
  return fs.readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(ts|tsx|mts)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => path.posix.join(dir, f.split(path.sep).join('/')));
}

interface SourceFile {
  file: string;
  text: string;
  ast: ts.SourceFile;
  imports: string[];
}

function importsOf(ast: ts.SourceFile): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      out.push(node.arguments[0].text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(ast);
  return out;
}

/** A relative specifier resolved to a repository path (null for packages and node: builtins). */
function resolve(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const candidate of [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}.tsx`, `${base}/index.ts`]) {
    if (fs.existsSync(path.join(ROOT, candidate)) && fs.statSync(path.join(ROOT, candidate)).isFile()) return candidate;
  }
  return base;
}

const files: SourceFile[] = SOURCE_DIRS.flatMap(listTs).map((file) => {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const ast = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  return { file, text, ast, imports: importsOf(ast).map((s) => resolve(file, s)).filter((s): s is string => s !== null) };
});
const byFile = new Map(files.map((f) => [f.file, f]));
const under = (file: string, dir: string): boolean => file.startsWith(`${dir}/`);

test('the parser sees the source (a rule that reads nothing cannot fail)', () => {
  assert.ok(byFile.has('server/main.ts') && byFile.has('server/config.ts'));
  assert.ok(files.filter((f) => under(f.file, 'server/lm')).length > 10);
  assert.ok(byFile.get('server/main.ts')!.imports.includes('server/config.ts'), 'imports are resolved to files');
});

test('no import cycles', () => {
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const walk = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const dep of byFile.get(file)?.imports ?? []) {
      if (!byFile.has(dep)) continue;
      if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep].join(' → '));
      else if (!state.has(dep)) walk(dep);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const f of files) if (!state.has(f.file)) walk(f.file);
  assert.deepEqual(cycles, []);
});

test('every relative import names a file that exists', () => {
  const missing = files.flatMap((f) => f.imports.filter((i) => !fs.existsSync(path.join(ROOT, i))).map((i) => `${f.file} → ${i}`));
  assert.deepEqual(missing, []);
});

const violations = (from: (f: string) => boolean, bad: (dep: string) => boolean): string[] =>
  files.filter((f) => from(f.file)).flatMap((f) => f.imports.filter(bad).map((dep) => `${f.file} → ${dep}`));

test('lm/ imports only lm/', () => {
  assert.deepEqual(violations((f) => under(f, 'server/lm'), (d) => !under(d, 'server/lm')), []);
});

test('db/ imports nothing from services/, http/, realtime/ or personalize/', () => {
  const layers = ['server/services', 'server/http', 'server/realtime', 'server/personalize'];
  assert.deepEqual(violations((f) => under(f, 'server/db'), (d) => layers.some((l) => under(d, l))), []);
});

test('only main.ts imports http/ and realtime/ (from outside them)', () => {
  const edge = (f: string): boolean => under(f, 'server/http') || under(f, 'server/realtime');
  // The client imports the socket contract and the HTTP schemas type-only, which is how it shares them.
  const typeOnlyClient = (f: SourceFile, dep: string): boolean => under(f.file, 'client/src') && isTypeOnlyImport(f, dep);
  const bad = files
    .filter((f) => f.file !== 'server/main.ts' && !edge(f.file))
    .flatMap((f) => f.imports.filter((d) => edge(d) && !typeOnlyClient(f, d)).map((d) => `${f.file} → ${d}`))
    // Tools outside server/ (the CLI, benches) may start the whole server as main.ts does.
    .filter((v) => v.startsWith('server/'));
  assert.deepEqual(bad, []);
});

function isTypeOnlyImport(f: SourceFile, dep: string): boolean {
  let typeOnly = true;
  f.ast.forEachChild((node) => {
    if (!ts.isImportDeclaration(node) && !ts.isExportDeclaration(node)) return;
    const spec = node.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || resolve(f.file, spec.text) !== dep) return;
    const isType = ts.isImportDeclaration(node) ? node.importClause?.isTypeOnly === true : node.isTypeOnly;
    if (!isType) typeOnly = false;
  });
  return typeOnly;
}

test('server/ is exactly what main.ts reaches', () => {
  const reached = new Set<string>();
  const visit = (file: string): void => {
    if (reached.has(file)) return;
    reached.add(file);
    for (const dep of byFile.get(file)?.imports ?? []) visit(dep);
  };
  visit('server/main.ts');
  // The training worker thread is started by path (new Worker(url)), not imported.
  for (const f of files) if (under(f.file, 'server') && /worker/.test(path.basename(f.file))) visit(f.file);
  const unreached = files.map((f) => f.file).filter((f) => under(f, 'server') && !reached.has(f));
  assert.deepEqual(unreached, []);
});

test('process.env is read only in config.ts, and server code has no console.*', () => {
  const envUse: string[] = [];
  const consoleUse: string[] = [];
  for (const f of files.filter((x) => under(x.file, 'server'))) {
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAccessExpression(node)) {
        if (ts.isIdentifier(node.expression) && node.expression.text === 'process' && node.name.text === 'env' && f.file !== 'server/config.ts') {
          envUse.push(`${f.file}:${f.ast.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
        }
        if (ts.isIdentifier(node.expression) && node.expression.text === 'console') {
          consoleUse.push(`${f.file}:${f.ast.getLineAndCharacterOfPosition(node.getStart()).line + 1}`);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(f.ast);
  }
  assert.deepEqual(envUse, [], 'process.env outside server/config.ts');
  assert.deepEqual(consoleUse, [], 'console.* in server code (use the pino logger)');
});
