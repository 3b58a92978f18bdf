-- Personalization (P-DPO): job and version details, the published version, cached reference
-- log-probs, per-user resets and the editable retraining schedule.

-- A version: status 'training' while its job runs (never served), then 'published', 'rejected'
-- (the held-out gate refused it; reason says why), 'failed' (its job did not finish) or
-- 'superseded'. data_through is the newest pair time the job trained on (its data window).
ALTER TABLE user_model_versions ADD COLUMN job_id TEXT;
ALTER TABLE user_model_versions ADD COLUMN reason TEXT;
ALTER TABLE user_model_versions ADD COLUMN data_through INTEGER;

-- A job: trigger admin/schedule/user; scope a JSON array of user ids for per-user retraining (NULL:
-- everyone); history the per-step log the admin charts draw.
ALTER TABLE training_jobs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE training_jobs ADD COLUMN scope TEXT CHECK (scope IS NULL OR json_valid(scope));
ALTER TABLE training_jobs ADD COLUMN requested_by TEXT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE training_jobs ADD COLUMN version_id TEXT REFERENCES user_model_versions (id) ON DELETE SET NULL;
ALTER TABLE training_jobs ADD COLUMN history TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(history));

-- Which version serves. One row; NULL version: nobody is personalized (the LM alone).
CREATE TABLE user_model_current (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  version_id   TEXT REFERENCES user_model_versions (id) ON DELETE SET NULL,
  published_at INTEGER
) STRICT;
INSERT INTO user_model_current (id, version_id, published_at) VALUES (1, NULL, NULL);

-- π_ref log-probs of a pair's two answers (the LM with no soft prompt), computed once per pair and
-- model key (base model and tokenization settings).
CREATE TABLE pair_reference_logps (
  pair_id   TEXT NOT NULL REFERENCES preference_pairs (id) ON DELETE CASCADE,
  model_key TEXT NOT NULL,
  chosen    REAL NOT NULL,
  rejected  REAL NOT NULL,
  PRIMARY KEY (pair_id, model_key)
) STRICT;

-- A user's "reset my personalization": versions made before it serve them e_0, and pairs from
-- before it are not trained on again.
CREATE TABLE personalization_resets (
  user_id  TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  reset_at INTEGER NOT NULL
) STRICT;

-- Settings an admin edits at run time (the retraining schedule), JSON by key.
CREATE TABLE personalization_settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL CHECK (json_valid(value))
) STRICT;
