-- Gatehouse's whole D1 schema (README "Admin API"). `migrations/` must produce exactly this;
-- tests/schema.test.mjs checks it.

CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  name           TEXT,
  email          TEXT,
  email_verified INTEGER NOT NULL DEFAULT 0,
  phone          TEXT,
  picture        TEXT,
  active         INTEGER NOT NULL DEFAULT 1,
  metadata       TEXT NOT NULL DEFAULT '{}',
  created_at     INTEGER NOT NULL,
  updated_at     INTEGER NOT NULL,
  last_login_at  INTEGER
  , sessions_valid_after INTEGER NOT NULL DEFAULT 0, roles TEXT NOT NULL DEFAULT '[]');
-- sessions_valid_after (migration 0002, laid out as SQLite records an added column):
-- "revoke all" sets it, and renewal refuses every session begun at or before it.
-- roles (migration 0005): a JSON array of role names given by an admin or an invitation.
CREATE INDEX users_email ON users (email);
CREATE INDEX users_created ON users (created_at DESC, id DESC);

-- The identity key is (issuer, sub); email never links.
CREATE TABLE identities (
  issuer        TEXT NOT NULL,
  sub           TEXT NOT NULL,
  provider      TEXT NOT NULL,
  user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email         TEXT,
  profile       TEXT NOT NULL DEFAULT '{}',
  created_at    INTEGER NOT NULL,
  last_login_at INTEGER,
  PRIMARY KEY (issuer, sub)
);
CREATE INDEX identities_user ON identities (user_id);

-- Audit events outlive the user they name (no foreign key), until pruned.
CREATE TABLE events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id    TEXT,
  type       TEXT NOT NULL,
  at         INTEGER NOT NULL,
  ip         TEXT NOT NULL DEFAULT '',
  user_agent TEXT NOT NULL DEFAULT '',
  detail     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_user_at ON events (user_id, at DESC);
CREATE INDEX events_at ON events (at);

-- Spent single-use things (kind prefix + SHA-256 of the secret), kept until they would have
-- expired anyway; a second spend of one key is a primary-key conflict.
CREATE TABLE spent (
  key        TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX spent_expires ON spent (expires_at);

-- Rate-limit counters (hashed bucket + window number), kept until their window ends; a hit
-- is one upsert that adds one and returns the new count.
CREATE TABLE counters (
  key        TEXT PRIMARY KEY,
  count      INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX counters_expires ON counters (expires_at);

-- Sign-up invitations of the admin API (migration 0005): single use (spent in `spent`), 7
-- days; only the SHA-256 of the secret is kept. `user_id`: attach to that existing user.
CREATE TABLE invitations (
  id         TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  email      TEXT,
  roles      TEXT NOT NULL DEFAULT '[]',
  return_to  TEXT NOT NULL,
  user_id    TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER,
  used_by    TEXT
);
CREATE INDEX invitations_created ON invitations (created_at DESC);

-- The OpenID Provider (migration 0006): clients, consents, refresh tokens. Authorization
-- codes are sealed (HMAC) and spent in `spent`.
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

-- Passkeys (WebAuthn credentials): each is an identity ("webauthn:{rp_id}", credential id)
-- of its user, and this row keeps what verifying its sign-ins needs: the public key (a JWK),
-- its algorithm, the last sign count, and the backup flags. It goes with its identity.
CREATE TABLE passkeys (
  issuer          TEXT NOT NULL,
  credential_id   TEXT NOT NULL,
  user_id         TEXT NOT NULL,
  name            TEXT NOT NULL,
  public_key      TEXT NOT NULL,
  alg             TEXT NOT NULL,
  sign_count      INTEGER NOT NULL DEFAULT 0,
  backup_eligible INTEGER NOT NULL DEFAULT 0,
  backup_state    INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  last_used_at    INTEGER,
  PRIMARY KEY (issuer, credential_id),
  FOREIGN KEY (issuer, credential_id) REFERENCES identities (issuer, sub) ON DELETE CASCADE
);
CREATE INDEX passkeys_user ON passkeys (user_id);
