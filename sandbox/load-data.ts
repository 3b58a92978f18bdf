// The sandbox's tables live in sandbox/data/*.json as data; each is read and checked against its zod
// schema once, when the module that owns it is imported, so a bad edit fails at once, naming the file
// and the field.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

export function loadDataFile<S extends z.ZodType>(file: URL, schema: S): z.output<S> {
  const where = fileURLToPath(file);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new Error(`${where}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}
