-- Anomaly alerts raised from the audit trail (rules in src/domain/alerts.rs).
CREATE TABLE alerts (
    id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    rule            VARCHAR(32)   NOT NULL,
    employee_id     BIGINT,
    event_seq       BIGINT        NOT NULL,
    summary         VARCHAR(500)  NOT NULL,
    raised_at       BIGINT        NOT NULL,
    acknowledged_by BIGINT,
    acknowledged_at BIGINT,
    ack_comment     VARCHAR(1000),
    KEY alerts_open (acknowledged_at, id),
    CONSTRAINT alerts_employee_fk FOREIGN KEY (employee_id) REFERENCES users(id),
    CONSTRAINT alerts_ack_fk FOREIGN KEY (acknowledged_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The last event the rules have looked at. Starts at the current head, so
-- an existing trail does not raise a flood of old alerts.
CREATE TABLE alert_cursor (
    id       BIGINT NOT NULL PRIMARY KEY,
    last_seq BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO alert_cursor (id, last_seq) SELECT 1, last_seq FROM audit_head WHERE id = 1;
