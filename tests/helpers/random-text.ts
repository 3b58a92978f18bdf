// Random Unicode text for property tests: ASCII, whitespace, accents (precomposed and combining),
// CJK, Hangul, Cyrillic, Arabic, astral-plane letters and emoji (including ZWJ sequences).
// U+FEFF is left out: a leading byte-order mark is dropped by some UTF-8 decoders by design.
import { Rng } from '../../server/lm/rng.ts';

/** Uniform [0, 1) draws from the project's seeded generator, for reproducible property tests. */
export function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

const POOLS: Array<[number, number]> = [
  [0x20, 0x7e], // printable ASCII
  [0x20, 0x20], // extra spaces
  [0x61, 0x7a], // extra lowercase: merges in the fixtures are mostly ASCII
  [0xc0, 0xff], // Latin-1 letters: 2-byte UTF-8
  [0x300, 0x36f], // combining diacritics
  [0x400, 0x44f], // Cyrillic
  [0x627, 0x64a], // Arabic
  [0x4e00, 0x4fff], // CJK: 3-byte UTF-8
  [0xac00, 0xacff], // Hangul syllables
  [0x1d400, 0x1d4ff], // mathematical letters: 4-byte UTF-8
  [0x1f600, 0x1f64f], // emoji: 4-byte UTF-8
];

const SPECIALS = ['\n', '\n\n', '\t', '👩‍💻', 'é', 'e\u0301', '你好', '😀', ' the', 'Hello'];

export function randomText(rand: () => number, maxLength = 40): string {
  const n = Math.floor(rand() * maxLength);
  let out = '';
  for (let i = 0; i < n; i++) {
    if (rand() < 0.15) {
      out += SPECIALS[Math.floor(rand() * SPECIALS.length)];
      continue;
    }
    const [lo, hi] = POOLS[Math.floor(rand() * POOLS.length)];
    out += String.fromCodePoint(lo + Math.floor(rand() * (hi - lo + 1)));
  }
  return out;
}

/** Split `bytes` into random chunks (some empty). */
export function randomChunks(bytes: Uint8Array, rand: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let i = 0;
  while (i < bytes.length) {
    const len = Math.floor(rand() * 5); // 0..4 bytes: empty chunks and mid-character cuts
    chunks.push(bytes.subarray(i, Math.min(bytes.length, i + len)));
    i += len;
  }
  return chunks;
}
