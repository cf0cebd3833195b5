-- Streaming the audit trail to SIEM sinks: one row per configured sink,
-- written only by server::audit::siem. `delivered_seq` is the last event the
-- sink acknowledged; it only ever moves forward. `failures` counts failures
-- in a row (0 once a delivery succeeds); the last error stays for /admin.
CREATE TABLE siem_cursors (
    sink          TEXT    NOT NULL PRIMARY KEY,
    delivered_seq INTEGER NOT NULL,
    delivered_at  INTEGER NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_error_at INTEGER
);
INSERT INTO job_leases (name, holder, expires_at) VALUES ('siem', '', 0);
