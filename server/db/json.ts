// JSON columns: TEXT holding JSON (the schema checks json_valid). Parse failures mean a corrupt row,
// which is a bug worth a loud error rather than a silent default.
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export const toJson = (v: JsonValue): string => JSON.stringify(v);

export function fromJson<T extends JsonValue = JsonValue>(text: string, column: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`column ${column} holds invalid JSON`);
  }
}
