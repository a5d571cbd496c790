-- Single-use things (login transactions, invitations; later authorization codes, refresh
-- tokens, email codes, passkey challenges) are spent by inserting their key here: the primary
-- key makes a second spend of one key a conflict, so of concurrent redemptions exactly one
-- succeeds. `key` is a kind prefix and the SHA-256 (base64url) of the secret, never the
-- secret; `expires_at` (Unix seconds) is when the thing is refused by its own expiry anyway,
-- after which the cron trigger deletes the row.
CREATE TABLE spent (
  key        TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX spent_expires ON spent (expires_at);
