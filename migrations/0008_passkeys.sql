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
