-- Attune's first schema. Conventions:
--   * ids are TEXT UUIDs (crypto.randomUUID), except where a composite key says it better;
--   * times are INTEGER milliseconds since the Unix epoch (UTC);
--   * JSON columns are TEXT holding JSON, checked with json_valid;
--   * everything a user owns hangs off users(id) with ON DELETE CASCADE, so deleting the user row
--     deletes all of their data in one statement (foreign_keys is ON for every connection).
-- The migration runner wraps this file in a transaction and records it in schema_migrations.

CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  username      TEXT NOT NULL COLLATE NOCASE UNIQUE,
  password_hash TEXT NOT NULL,
  role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_at    INTEGER NOT NULL
) STRICT;

-- Sign-in sessions. Only the SHA-256 of the token is stored: a leaked database does not sign anyone in.
CREATE TABLE sessions (
  token_hash TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- API keys ('atn_…'): shown once, stored as SHA-256; prefix is the first characters, for display.
CREATE TABLE api_keys (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  key_hash   TEXT NOT NULL UNIQUE,
  prefix     TEXT NOT NULL,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

CREATE TABLE conversations (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
-- Serves the newest-first, keyset-paged conversation list.
CREATE INDEX conversations_user_recent ON conversations (user_id, updated_at DESC, id DESC);

-- Reserved for the personalization issue: one trained user-model version (soft prompts), its training
-- config and held-out metrics, and the weights blob. Status values are owned by that issue, so there
-- is no CHECK here to migrate later.
CREATE TABLE user_model_versions (
  id           TEXT PRIMARY KEY,
  created_at   INTEGER NOT NULL,
  published_at INTEGER,
  status       TEXT NOT NULL,
  config       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
  metrics      TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metrics)),
  blob         BLOB
) STRICT;

-- Messages form a tree per conversation: siblings share parent_id (regenerations, A/B candidates).
-- Provenance of assistant messages: model_id, the user-model version that personalized it, the
-- sampling parameters and the seed (enough to reproduce the reply).
CREATE TABLE messages (
  id                 TEXT PRIMARY KEY,
  conversation_id    TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  parent_id          TEXT REFERENCES messages (id) ON DELETE CASCADE,
  role               TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
  content            TEXT NOT NULL,
  status             TEXT NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'partial', 'error')),
  finish_reason      TEXT,
  model_id           TEXT,
  user_model_version TEXT REFERENCES user_model_versions (id) ON DELETE SET NULL,
  sampling           TEXT CHECK (sampling IS NULL OR json_valid(sampling)),
  seed               INTEGER,
  created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, id);
CREATE INDEX messages_parent ON messages (parent_id);

-- Thumbs: one per (user, message); changing one's mind updates the row.
CREATE TABLE feedback (
  message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  value      TEXT NOT NULL CHECK (value IN ('up', 'down')),
  reasons    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(reasons)),
  comment    TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, message_id)
) STRICT;
CREATE INDEX feedback_message ON feedback (message_id);

-- A/B comparisons: two sibling answers shown side by side; choice stays NULL until the user picks.
CREATE TABLE comparisons (
  id              TEXT PRIMARY KEY,
  user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  message_a       TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  message_b       TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  choice          TEXT CHECK (choice IS NULL OR choice IN ('A', 'B', 'tie', 'both_bad')),
  created_at      INTEGER NOT NULL,
  decided_at      INTEGER,
  CHECK (message_a <> message_b)
) STRICT;
CREATE INDEX comparisons_user ON comparisons (user_id, created_at);
CREATE INDEX comparisons_conversation ON comparisons (conversation_id);

-- Training data for P-DPO. prompt is the full prior conversation as chat messages (JSON array), so a
-- pair stays usable if the template changes. chosen/rejected_message point at the answers the pair
-- came from when it came from this server: deleting those messages (or their conversation) deletes
-- the pair too, so a deleted conversation is not trained on again.
CREATE TABLE preference_pairs (
  id                 TEXT PRIMARY KEY,
  user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  prompt             TEXT NOT NULL CHECK (json_valid(prompt) AND json_type(prompt) = 'array'),
  chosen             TEXT NOT NULL,
  rejected           TEXT NOT NULL,
  source             TEXT NOT NULL CHECK (source IN ('ab', 'regenerate')),
  chosen_message     TEXT REFERENCES messages (id) ON DELETE CASCADE,
  rejected_message   TEXT REFERENCES messages (id) ON DELETE CASCADE,
  created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX preference_pairs_user ON preference_pairs (user_id, created_at);

-- Reserved for the personalization issue: retraining jobs and their progress.
CREATE TABLE training_jobs (
  id          TEXT PRIMARY KEY,
  status      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER,
  error       TEXT,
  progress    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(progress))
) STRICT;
CREATE INDEX training_jobs_created ON training_jobs (created_at);
