-- Database access provisioned by grants. A target is a MySQL or MariaDB
-- server Gatehouse administers through a connector account, whose password
-- is sealed under the master key. Roles carry privileges per target; each
-- employee has one account per target, reconciled with what is due.
CREATE TABLE db_targets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    host        TEXT    NOT NULL,
    port        INTEGER NOT NULL,
    tls         INTEGER NOT NULL,
    username    TEXT    NOT NULL,
    secret_enc  TEXT    NOT NULL,
    -- Drift of Gatehouse's own accounts and roles is undone by the scan.
    auto_correct      INTEGER NOT NULL DEFAULT 0,
    drift_checked_at  INTEGER NOT NULL DEFAULT 0,
    -- SHA-256 of the last scan's findings ('' when clean): the same drift
    -- is recorded once, not every minute.
    drift_fingerprint TEXT    NOT NULL DEFAULT '',
    created_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL
);

-- '' for no table or column, so that one privilege is stored once.
CREATE TABLE db_role_privileges (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target_id   INTEGER NOT NULL REFERENCES db_targets(id),
    role_key    TEXT    NOT NULL,
    privilege   TEXT    NOT NULL,
    schema_name TEXT    NOT NULL,
    table_name  TEXT    NOT NULL,
    column_name TEXT    NOT NULL,
    created_by  INTEGER NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    -- 'proposed' while it waits for a second administrator (once two
    -- exist), then 'active': only active privileges reach the target.
    state       TEXT    NOT NULL DEFAULT 'active',
    approved_by INTEGER,
    approved_at INTEGER,
    UNIQUE (target_id, role_key, privilege, schema_name, table_name, column_name)
);
CREATE INDEX db_role_privileges_role ON db_role_privileges(role_key);

-- What was last confirmed on the target for an employee (roles, lock), the
-- employee's access_version it was computed from, and the next instant
-- their due roles change by time alone (a grant's start or expiry).
CREATE TABLE db_accounts (
    target_id       INTEGER NOT NULL REFERENCES db_targets(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    account         TEXT    NOT NULL,
    roles           TEXT    NOT NULL,
    locked          INTEGER NOT NULL,
    applied_version INTEGER NOT NULL,
    next_change_at  INTEGER,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    pending_since   INTEGER,
    alerted         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (target_id, user_id)
);

-- Reconciliation and drift scans run on the server holding this lease.
INSERT INTO job_leases (name, holder, expires_at) VALUES ('db_provisioning', '', 0);
