-- Counters of the long-window rate limits (magic-link sends per address and per client,
-- failed admin-key attempts per client network). A hit is one upsert that adds one and
-- returns the new count, so concurrent hits are counted exactly. `key` is the SHA-256
-- (base64url) of the bucket and the window number, never an email or an IP; `expires_at`
-- (Unix seconds) is the end of the window, after which the cron trigger deletes the row.
CREATE TABLE counters (
  key        TEXT PRIMARY KEY,
  count      INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX counters_expires ON counters (expires_at);
