-- Gatehouse foundation schema (MySQL / MariaDB). Times are milliseconds since the Unix epoch.
-- Binary values (encrypted secrets, salts, hashes) are stored as base64 or hex text.
-- Text columns are VARCHAR where bounded; long JSON is MEDIUMTEXT.

CREATE TABLE users (
    id                    BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email                 VARCHAR(254) NOT NULL,
    display_name          VARCHAR(100) NOT NULL,
    department            VARCHAR(32)  NOT NULL,
    status                VARCHAR(16)  NOT NULL DEFAULT 'active',
    password_hash         VARCHAR(255),
    totp_secret_enc       VARCHAR(255),
    totp_pending_enc      VARCHAR(255),
    totp_enrolled_at      BIGINT,
    totp_last_step        BIGINT,
    recovery_reveal_enc   VARCHAR(1024),
    created_at            BIGINT       NOT NULL,
    updated_at            BIGINT       NOT NULL,
    UNIQUE KEY users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE grants (
    id            BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id       BIGINT        NOT NULL,
    role          VARCHAR(64)   NOT NULL,
    granted_by    BIGINT,
    reason        VARCHAR(1000) NOT NULL,
    starts_at     BIGINT        NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    revoked_by    BIGINT,
    revoke_reason VARCHAR(1000),
    created_at    BIGINT        NOT NULL,
    KEY grants_user (user_id),
    CONSTRAINT grants_user_fk FOREIGN KEY (user_id) REFERENCES users(id),
    CONSTRAINT grants_granted_by_fk FOREIGN KEY (granted_by) REFERENCES users(id),
    CONSTRAINT grants_revoked_by_fk FOREIGN KEY (revoked_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE recovery_codes (
    id         BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id    BIGINT        NOT NULL,
    salt       VARCHAR(64)   NOT NULL,
    code_hash  VARCHAR(64)   NOT NULL,
    used_at    BIGINT,
    created_at BIGINT        NOT NULL,
    KEY recovery_codes_user (user_id),
    CONSTRAINT recovery_codes_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE setup_tokens (
    id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_hash VARCHAR(64) NOT NULL,
    expires_at BIGINT      NOT NULL,
    used_at    BIGINT,
    created_at BIGINT      NOT NULL,
    UNIQUE KEY setup_tokens_hash (token_hash)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE auth_failures (
    id      BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    scope   VARCHAR(16)  NOT NULL,
    subject VARCHAR(254) NOT NULL,
    at      BIGINT       NOT NULL,
    KEY auth_failures_subject (scope, subject, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE sessions (
    id_hash    VARCHAR(64) NOT NULL PRIMARY KEY,
    user_id    BIGINT,
    data       MEDIUMTEXT  NOT NULL,
    created_at BIGINT      NOT NULL,
    last_seen  BIGINT      NOT NULL,
    expires_at BIGINT      NOT NULL,
    KEY sessions_user (user_id),
    KEY sessions_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_events (
    seq            BIGINT        NOT NULL PRIMARY KEY,
    at             BIGINT        NOT NULL,
    actor_user_id  BIGINT,
    actor_session  VARCHAR(64),
    actor_ip       VARCHAR(64),
    actor_ua       VARCHAR(512),
    action         VARCHAR(100)  NOT NULL,
    target_type    VARCHAR(64),
    target_id      VARCHAR(254),
    customer_id    VARCHAR(254),
    outcome        VARCHAR(16)   NOT NULL,
    reason         VARCHAR(1000),
    details        MEDIUMTEXT    NOT NULL,
    prev_hash      CHAR(64)      NOT NULL,
    hash           CHAR(64)      NOT NULL,
    KEY audit_events_actor (actor_user_id, seq),
    KEY audit_events_target (target_type, target_id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_events is append-only';

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_events is append-only';

CREATE TABLE audit_head (
    id        BIGINT   NOT NULL PRIMARY KEY,
    last_seq  BIGINT   NOT NULL,
    last_hash CHAR(64) NOT NULL,
    CONSTRAINT audit_head_single CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO audit_head (id, last_seq, last_hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
