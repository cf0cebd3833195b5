-- Roles, grants with approval and expiry bookkeeping, invitations,
-- suspension and offboarding (MySQL / MariaDB).

ALTER TABLE users
    ADD COLUMN status_reason VARCHAR(1000),
    ADD COLUMN offboard_at BIGINT,
    ADD COLUMN offboard_scheduled_by BIGINT,
    ADD COLUMN offboarded_at BIGINT,
    ADD COLUMN offboarded_by BIGINT,
    ADD KEY users_offboard_at (offboard_at);

-- A grant of `admin` made while two or more administrators exist waits
-- (pending = 1) for a second administrator.
ALTER TABLE grants
    ADD COLUMN pending BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN approved_by BIGINT,
    ADD COLUMN approved_at BIGINT,
    ADD COLUMN expiry_recorded_at BIGINT,
    ADD KEY grants_expiry (expires_at, expiry_recorded_at),
    ADD CONSTRAINT grants_approved_by_fk FOREIGN KEY (approved_by) REFERENCES users(id);

-- Custom roles. Built-in roles live in code. Deleted roles stay (deleted_at)
-- so that old grants keep their meaning and the key is never reused.
CREATE TABLE roles (
    role_key         VARCHAR(40)   NOT NULL PRIMARY KEY,
    name             VARCHAR(80)   NOT NULL,
    description      VARCHAR(500)  NOT NULL,
    permissions      VARCHAR(1000) NOT NULL,
    max_duration_ms  BIGINT,
    requestable      BIGINT        NOT NULL DEFAULT 0,
    created_by       BIGINT,
    created_at       BIGINT        NOT NULL,
    updated_at       BIGINT        NOT NULL,
    deleted_at       BIGINT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE invitations (
    id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT      NOT NULL,
    token_hash   VARCHAR(64) NOT NULL,
    created_by   BIGINT,
    created_at   BIGINT      NOT NULL,
    expires_at   BIGINT      NOT NULL,
    used_at      BIGINT,
    cancelled_at BIGINT,
    UNIQUE KEY invitations_token (token_hash),
    KEY invitations_user (user_id),
    CONSTRAINT invitations_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE offboarding_checklist (
    user_id  BIGINT      NOT NULL,
    item     VARCHAR(32) NOT NULL,
    done_by  BIGINT      NOT NULL,
    done_at  BIGINT      NOT NULL,
    PRIMARY KEY (user_id, item),
    CONSTRAINT checklist_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
