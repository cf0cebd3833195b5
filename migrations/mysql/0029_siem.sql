-- Streaming the audit trail to SIEM sinks: one row per configured sink,
-- written only by server::audit::siem. `delivered_seq` is the last event the
-- sink acknowledged; it only ever moves forward. `failures` counts failures
-- in a row (0 once a delivery succeeds); the last error stays for /admin.
CREATE TABLE siem_cursors (
    sink          VARCHAR(64) NOT NULL PRIMARY KEY,
    delivered_seq BIGINT      NOT NULL,
    delivered_at  BIGINT      NOT NULL,
    failures      BIGINT      NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_error_at BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO job_leases (name, holder, expires_at) VALUES ('siem', '', 0);
