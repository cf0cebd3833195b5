-- Just-in-time elevation requests (MySQL / MariaDB). Kept forever, after expiry too.
CREATE TABLE elevation_requests (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    requester_id     BIGINT        NOT NULL,
    role             VARCHAR(64)   NOT NULL,
    duration_ms      BIGINT        NOT NULL,
    justification    VARCHAR(1000) NOT NULL,
    ticket           VARCHAR(32)   NOT NULL,
    starts_at        BIGINT,
    requested_at     BIGINT        NOT NULL,
    state            VARCHAR(16)   NOT NULL,
    approvals        VARCHAR(255)  NOT NULL DEFAULT '',
    approvals_needed BIGINT        NOT NULL DEFAULT 1,
    decided_by       BIGINT,
    decided_at       BIGINT,
    decision_reason  VARCHAR(1000),
    grant_id         BIGINT,
    window_start     BIGINT,
    window_end       BIGINT,
    updated_at       BIGINT        NOT NULL,
    KEY elevation_requests_state (state, requested_at),
    KEY elevation_requests_requester (requester_id, id),
    CONSTRAINT elevation_requests_requester_fk FOREIGN KEY (requester_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
