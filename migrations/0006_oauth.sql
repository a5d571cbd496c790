-- Gatehouse as an OpenID Provider: the apps that sign in through it (clients), the consents
-- people gave them, and the refresh tokens they hold. Authorization codes are sealed (HMAC)
-- and spent in the `spent` table, so they have no table of their own.
CREATE TABLE clients (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  type          TEXT NOT NULL,
  secret_hash   TEXT,
  settings      TEXT NOT NULL DEFAULT '{}',
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);

-- One row per person and app: the scopes they agreed to (space-separated).
CREATE TABLE oauth_consents (
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  scope      TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (user_id, client_id)
) WITHOUT ROWID;
CREATE INDEX oauth_consents_client ON oauth_consents (client_id);

-- Refresh tokens, by the SHA-256 of the token. A family is every token rotated from one
-- authorization code (the code's hash); `used_at` marks a rotated token, whose reuse revokes
-- the family.
CREATE TABLE oauth_refresh_tokens (
  hash       TEXT PRIMARY KEY,
  family     TEXT NOT NULL,
  client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  grant_data TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX oauth_refresh_family ON oauth_refresh_tokens (family);
CREATE INDEX oauth_refresh_user_client ON oauth_refresh_tokens (user_id, client_id);
CREATE INDEX oauth_refresh_client ON oauth_refresh_tokens (client_id);
