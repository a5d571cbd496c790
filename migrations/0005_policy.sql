-- Migration 0005: access policy and roles. `users.roles` holds the roles an admin (or an
-- accepted invitation) gave the user, a JSON array of `[a-z0-9_-]{1,32}` names; the policy's
-- rule roles are added when a token is issued, never stored. `invitations` are the admin
-- API's sign-up invitations: single use (spent in `spent`), 7 days; only the SHA-256 of the
-- invitation's secret is kept. `user_id` set: the invitation attaches a new identity to that
-- existing user instead of making a new one.
ALTER TABLE users ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
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
