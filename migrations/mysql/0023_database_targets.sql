-- Database access provisioned by grants. A target is a MySQL or MariaDB
-- server Gatehouse administers through a connector account, whose password
-- is sealed under the master key. Roles carry privileges per target; each
-- employee has one account per target, reconciled with what is due.
CREATE TABLE db_targets (
    id          BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(80)   NOT NULL,
    host        VARCHAR(255)  NOT NULL,
    port        BIGINT        NOT NULL,
    tls         BIGINT        NOT NULL,
    username    VARCHAR(80)   NOT NULL,
    secret_enc  TEXT          NOT NULL,
    -- Drift of Gatehouse's own accounts and roles is undone by the scan.
    auto_correct      BIGINT      NOT NULL DEFAULT 0,
    drift_checked_at  BIGINT      NOT NULL DEFAULT 0,
    -- SHA-256 of the last scan's findings ('' when clean): the same drift
    -- is recorded once, not every minute.
    drift_fingerprint VARCHAR(64) NOT NULL DEFAULT '',
    created_by  BIGINT        NOT NULL,
    created_at  BIGINT        NOT NULL,
    UNIQUE KEY db_targets_name (name),
    CONSTRAINT db_targets_creator_fk FOREIGN KEY (created_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- '' for no table or column, so that one privilege is stored once.
CREATE TABLE db_role_privileges (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    target_id   BIGINT       NOT NULL,
    role_key    VARCHAR(64)  NOT NULL,
    privilege   VARCHAR(16)  NOT NULL,
    schema_name VARCHAR(64)  NOT NULL,
    table_name  VARCHAR(64)  NOT NULL,
    column_name VARCHAR(64)  NOT NULL,
    created_by  BIGINT       NOT NULL,
    created_at  BIGINT       NOT NULL,
    -- 'proposed' while it waits for a second administrator (once two
    -- exist), then 'active': only active privileges reach the target.
    state       VARCHAR(16)  NOT NULL DEFAULT 'active',
    approved_by BIGINT,
    approved_at BIGINT,
    UNIQUE KEY db_role_privileges_one (target_id, role_key, privilege, schema_name, table_name, column_name),
    KEY db_role_privileges_role (role_key),
    CONSTRAINT db_role_privileges_target_fk FOREIGN KEY (target_id) REFERENCES db_targets(id),
    CONSTRAINT db_role_privileges_creator_fk FOREIGN KEY (created_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What was last confirmed on the target for an employee (roles, lock), the
-- employee's access_version it was computed from, and the next instant
-- their due roles change by time alone (a grant's start or expiry).
CREATE TABLE db_accounts (
    target_id       BIGINT        NOT NULL,
    user_id         BIGINT        NOT NULL,
    account         VARCHAR(32)   NOT NULL,
    roles           TEXT          NOT NULL,
    locked          BIGINT        NOT NULL,
    applied_version BIGINT        NOT NULL,
    next_change_at  BIGINT,
    status          VARCHAR(16)   NOT NULL,
    attempts        BIGINT        NOT NULL DEFAULT 0,
    next_attempt_at BIGINT        NOT NULL DEFAULT 0,
    pending_since   BIGINT,
    alerted         BIGINT        NOT NULL DEFAULT 0,
    last_error      VARCHAR(1000),
    updated_at      BIGINT        NOT NULL,
    PRIMARY KEY (target_id, user_id),
    CONSTRAINT db_accounts_target_fk FOREIGN KEY (target_id) REFERENCES db_targets(id),
    CONSTRAINT db_accounts_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Reconciliation and drift scans run on the server holding this lease.
INSERT INTO job_leases (name, holder, expires_at) VALUES ('db_provisioning', '', 0);
