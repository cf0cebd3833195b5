-- A change to a custom role that adds administrator power, an audit:* or a
-- critical permission waits here for a second administrator (once two
-- exist). `base_permissions` is the role as the proposer saw it: if the
-- role changed since, the proposal is refused instead of applied.
CREATE TABLE role_changes (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    role_key         TEXT    NOT NULL REFERENCES roles(role_key),
    name             TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    permissions      TEXT    NOT NULL,
    max_duration_ms  INTEGER,
    requestable      INTEGER NOT NULL,
    base_permissions TEXT    NOT NULL,
    proposed_by      INTEGER NOT NULL REFERENCES users(id),
    proposed_at      INTEGER NOT NULL,
    -- 'approved' or 'rejected'; NULL while it waits
    outcome          TEXT,
    decided_by       INTEGER REFERENCES users(id),
    decided_at       INTEGER
);
CREATE INDEX role_changes_waiting ON role_changes(outcome, role_key);
