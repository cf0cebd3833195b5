-- Notifications about elevation requests: in-app (a badge and a list),
-- and an outbox delivered by a job to the configured webhook and by email.
-- Both are written in the same transaction as the change they announce.
CREATE TABLE notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    subject    TEXT    NOT NULL,
    link       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX notifications_user ON notifications(user_id, id);

CREATE TABLE notification_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- 'webhook' or 'email'
    channel         TEXT    NOT NULL,
    -- the email address; empty for the webhook
    recipient       TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    gave_up_at      INTEGER
);
CREATE INDEX notification_outbox_due ON notification_outbox(delivered_at, gave_up_at, next_attempt_at);

-- When the requester was reminded that the access ends in 10 minutes.
ALTER TABLE elevation_requests ADD COLUMN reminded_at INTEGER;
