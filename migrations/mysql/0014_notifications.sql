-- Notifications about elevation requests: in-app (a badge and a list),
-- and an outbox delivered by a job to the configured webhook and by email.
-- Both are written in the same transaction as the change they announce.
CREATE TABLE notifications (
    id         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT        NOT NULL,
    subject    VARCHAR(1000) NOT NULL,
    link       VARCHAR(255)  NOT NULL,
    created_at BIGINT        NOT NULL,
    read_at    BIGINT,
    KEY notifications_user (user_id, id),
    CONSTRAINT notifications_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE notification_outbox (
    id              BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    channel         VARCHAR(16)   NOT NULL,
    recipient       VARCHAR(320)  NOT NULL,
    subject         VARCHAR(1000) NOT NULL,
    body            TEXT          NOT NULL,
    created_at      BIGINT        NOT NULL,
    attempts        BIGINT        NOT NULL DEFAULT 0,
    next_attempt_at BIGINT        NOT NULL,
    delivered_at    BIGINT,
    gave_up_at      BIGINT,
    KEY notification_outbox_due (delivered_at, gave_up_at, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

ALTER TABLE elevation_requests ADD COLUMN reminded_at BIGINT;
