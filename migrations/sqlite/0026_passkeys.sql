-- Passkeys and security keys (WebAuthn). One row per registered
-- credential; removing one deletes its row (the audit trail keeps the
-- registration and the removal).
CREATE TABLE passkeys (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users(id),
    -- The WebAuthn user handle (base64url of 16 random bytes): the same
    -- for all of an employee's passkeys; a discoverable credential returns
    -- it at a passwordless sign-in.
    user_handle     TEXT    NOT NULL,
    -- SHA-256 (hex) of the credential id: unique across all employees, so
    -- one authenticator's credential never belongs to two accounts.
    credential_hash TEXT    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    -- The credential as webauthn-rs keeps it (JSON: public key, signature
    -- counter, backup flags); rewritten after each use.
    credential      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_user ON passkeys (user_id);
CREATE INDEX passkeys_handle ON passkeys (user_handle);
