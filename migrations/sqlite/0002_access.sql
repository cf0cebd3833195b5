-- Roles, grants with approval and expiry bookkeeping, invitations,
-- suspension and offboarding (SQLite).

ALTER TABLE users ADD COLUMN status_reason TEXT;
ALTER TABLE users ADD COLUMN offboard_at INTEGER;
ALTER TABLE users ADD COLUMN offboard_scheduled_by INTEGER REFERENCES users(id);
ALTER TABLE users ADD COLUMN offboarded_at INTEGER;
ALTER TABLE users ADD COLUMN offboarded_by INTEGER REFERENCES users(id);
CREATE INDEX users_offboard_at ON users(offboard_at);

-- A grant of `admin` made while two or more administrators exist waits
-- (pending = 1) for a second administrator.
ALTER TABLE grants ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE grants ADD COLUMN approved_by INTEGER REFERENCES users(id);
ALTER TABLE grants ADD COLUMN approved_at INTEGER;
-- Set once the background job has recorded the expiry in the audit chain.
ALTER TABLE grants ADD COLUMN expiry_recorded_at INTEGER;
CREATE INDEX grants_expiry ON grants(expires_at, expiry_recorded_at);

-- Custom roles. Built-in roles live in code. Deleted roles stay (deleted_at)
-- so that old grants keep their meaning and the key is never reused.
CREATE TABLE roles (
    role_key         TEXT    PRIMARY KEY,
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    permissions      TEXT    NOT NULL,
    max_duration_ms  INTEGER,
    requestable      INTEGER NOT NULL DEFAULT 0,
    created_by       INTEGER REFERENCES users(id),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER
);

CREATE TABLE invitations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    token_hash   TEXT    NOT NULL UNIQUE,
    created_by   INTEGER REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    cancelled_at INTEGER
);
CREATE INDEX invitations_user ON invitations(user_id);

CREATE TABLE offboarding_checklist (
    user_id  INTEGER NOT NULL REFERENCES users(id),
    item     TEXT    NOT NULL,
    done_by  INTEGER NOT NULL REFERENCES users(id),
    done_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, item)
);
