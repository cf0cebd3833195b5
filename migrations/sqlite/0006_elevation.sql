-- Just-in-time elevation requests (SQLite). Kept forever, after expiry too.
CREATE TABLE elevation_requests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    requester_id     INTEGER NOT NULL REFERENCES users(id),
    role             TEXT    NOT NULL,
    duration_ms      INTEGER NOT NULL,
    justification    TEXT    NOT NULL,
    ticket           TEXT    NOT NULL,
    starts_at        INTEGER,
    requested_at     INTEGER NOT NULL,
    state            TEXT    NOT NULL,
    approvals        TEXT    NOT NULL DEFAULT '',
    approvals_needed INTEGER NOT NULL DEFAULT 1,
    decided_by       INTEGER REFERENCES users(id),
    decided_at       INTEGER,
    decision_reason  TEXT,
    grant_id         INTEGER REFERENCES grants(id),
    window_start     INTEGER,
    window_end       INTEGER,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX elevation_requests_state ON elevation_requests(state, requested_at);
CREATE INDEX elevation_requests_requester ON elevation_requests(requester_id, id);
