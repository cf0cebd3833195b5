-- Passkeys and security keys (WebAuthn). One row per registered
-- credential; removing one deletes its row (the audit trail keeps the
-- registration and the removal).
CREATE TABLE passkeys (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT       NOT NULL,
    -- The WebAuthn user handle (base64url of 16 random bytes): the same
    -- for all of an employee's passkeys; a discoverable credential returns
    -- it at a passwordless sign-in.
    user_handle     VARCHAR(64)  NOT NULL,
    -- SHA-256 (hex) of the credential id: unique across all employees, so
    -- one authenticator's credential never belongs to two accounts.
    credential_hash CHAR(64)     NOT NULL,
    name            VARCHAR(240) NOT NULL,
    -- The credential as webauthn-rs keeps it (JSON: public key, signature
    -- counter, backup flags); rewritten after each use.
    credential      TEXT         NOT NULL,
    created_at      BIGINT       NOT NULL,
    last_used_at    BIGINT,
    UNIQUE KEY passkeys_credential (credential_hash),
    KEY passkeys_user (user_id),
    KEY passkeys_handle (user_handle),
    CONSTRAINT passkeys_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
