-- Migration 0002: a per-user "sessions valid after" time. "Revoke all" (and deactivation)
-- sets it; a renewal refuses any session begun at or before it, so that a session KV's
-- index did not list yet (listings lag) is stopped too. 0: no session refused.
ALTER TABLE users ADD COLUMN sessions_valid_after INTEGER NOT NULL DEFAULT 0;
