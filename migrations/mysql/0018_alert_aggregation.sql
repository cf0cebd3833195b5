-- Alerts aggregate: while an alert of a rule about an employee is open,
-- each further match adds to its count, moves its last-seen time and joins
-- its list of events, instead of raising a new alert. The webhook is
-- called when an alert is raised and again as its count crosses 10, 100
-- and 1,000 (webhook_sent_count: the count the webhook last heard; 0 when
-- it has not heard of the alert).
ALTER TABLE alerts ADD COLUMN occurrences BIGINT NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN last_seen_at BIGINT;
ALTER TABLE alerts ADD COLUMN last_event_seq BIGINT;
ALTER TABLE alerts ADD COLUMN webhook_sent_count BIGINT NOT NULL DEFAULT 0;
UPDATE alerts SET last_seen_at = raised_at, last_event_seq = event_seq,
    webhook_sent_count = CASE WHEN webhook_delivered_at IS NULL THEN 0 ELSE 1 END;
CREATE INDEX alerts_open_rule ON alerts(rule, employee_id, acknowledged_at);

CREATE TABLE alert_events (
    alert_id  BIGINT NOT NULL,
    event_seq BIGINT NOT NULL,
    PRIMARY KEY (alert_id, event_seq),
    CONSTRAINT alert_events_alert_fk FOREIGN KEY (alert_id) REFERENCES alerts(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO alert_events (alert_id, event_seq) SELECT id, event_seq FROM alerts;
