-- Anomaly alerts raised from the audit trail (rules in src/domain/alerts.rs).
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT    NOT NULL,
    employee_id     INTEGER REFERENCES users(id),
    event_seq       INTEGER NOT NULL,
    summary         TEXT    NOT NULL,
    raised_at       INTEGER NOT NULL,
    acknowledged_by INTEGER REFERENCES users(id),
    acknowledged_at INTEGER,
    ack_comment     TEXT
);
CREATE INDEX alerts_open ON alerts(acknowledged_at, id);

-- The last event the rules have looked at. Starts at the current head, so
-- an existing trail does not raise a flood of old alerts.
CREATE TABLE alert_cursor (
    id       INTEGER PRIMARY KEY,
    last_seq INTEGER NOT NULL
);
INSERT INTO alert_cursor (id, last_seq) SELECT 1, last_seq FROM audit_head WHERE id = 1;
