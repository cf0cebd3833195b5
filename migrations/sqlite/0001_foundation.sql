-- Gatehouse foundation schema (SQLite). Times are milliseconds since the Unix epoch.
-- Binary values (encrypted secrets, salts, hashes) are stored as base64 or hex text.

CREATE TABLE users (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    email                 TEXT    NOT NULL UNIQUE,
    display_name          TEXT    NOT NULL,
    department            TEXT    NOT NULL,
    status                TEXT    NOT NULL DEFAULT 'active',
    password_hash         TEXT,
    totp_secret_enc       TEXT,
    totp_pending_enc      TEXT,
    totp_enrolled_at      INTEGER,
    totp_last_step        INTEGER,
    recovery_reveal_enc   TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

CREATE TABLE grants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    role          TEXT    NOT NULL,
    granted_by    INTEGER REFERENCES users(id),
    reason        TEXT    NOT NULL,
    starts_at     INTEGER NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    revoked_by    INTEGER REFERENCES users(id),
    revoke_reason TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX grants_user ON grants(user_id);

CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    salt       TEXT    NOT NULL,
    code_hash  TEXT    NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);

CREATE TABLE setup_tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT    NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    created_at INTEGER NOT NULL
);

CREATE TABLE auth_failures (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    scope   TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX auth_failures_subject ON auth_failures(scope, subject, at);

CREATE TABLE sessions (
    id_hash    TEXT    PRIMARY KEY,
    user_id    INTEGER,
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE audit_events (
    seq            INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    actor_user_id  INTEGER,
    actor_session  TEXT,
    actor_ip       TEXT,
    actor_ua       TEXT,
    action         TEXT    NOT NULL,
    target_type    TEXT,
    target_id      TEXT,
    customer_id    TEXT,
    outcome        TEXT    NOT NULL,
    reason         TEXT,
    details        TEXT    NOT NULL,
    prev_hash      TEXT    NOT NULL,
    hash           TEXT    NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events(actor_user_id, seq);
CREATE INDEX audit_events_target ON audit_events(target_type, target_id, seq);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The chain's head, kept apart from the events: appends lock this row, and
-- verification compares it with the last event to detect a cut-off tail.
CREATE TABLE audit_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL,
    last_hash TEXT    NOT NULL
);
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
