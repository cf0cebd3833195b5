-- Auditor filters: by customer and by action, newest first.
CREATE INDEX audit_events_customer ON audit_events(customer_id, seq);
CREATE INDEX audit_events_action ON audit_events(action, seq);
