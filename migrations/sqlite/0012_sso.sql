-- Single sign-on: the provider subject an employee is linked to (set at
-- their first SSO sign-in), and started sign-ins, usable once within 10
-- minutes. The state is stored hashed; the PKCE verifier encrypted.
ALTER TABLE users ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX users_oidc_subject ON users(oidc_subject);

CREATE TABLE oidc_logins (
    state_hash    TEXT    PRIMARY KEY,
    binding_hash  TEXT    NOT NULL,
    nonce         TEXT    NOT NULL,
    verifier_enc  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    used_at       INTEGER
);
CREATE INDEX oidc_logins_created ON oidc_logins(created_at);
