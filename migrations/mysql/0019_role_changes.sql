-- A change to a custom role that adds administrator power, an audit:* or a
-- critical permission waits here for a second administrator (once two
-- exist). `base_permissions` is the role as the proposer saw it: if the
-- role changed since, the proposal is refused instead of applied.
CREATE TABLE role_changes (
    id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
    role_key         VARCHAR(40)   NOT NULL,
    name             VARCHAR(80)   NOT NULL,
    description      VARCHAR(500)  NOT NULL,
    permissions      VARCHAR(1000) NOT NULL,
    max_duration_ms  BIGINT,
    requestable      BIGINT        NOT NULL,
    base_permissions VARCHAR(1000) NOT NULL,
    proposed_by      BIGINT        NOT NULL,
    proposed_at      BIGINT        NOT NULL,
    -- 'approved' or 'rejected'; NULL while it waits
    outcome          VARCHAR(16),
    decided_by       BIGINT,
    decided_at       BIGINT,
    KEY role_changes_waiting (outcome, role_key),
    CONSTRAINT role_changes_role_fk FOREIGN KEY (role_key) REFERENCES roles(role_key),
    CONSTRAINT role_changes_proposer_fk FOREIGN KEY (proposed_by) REFERENCES users(id),
    CONSTRAINT role_changes_decider_fk FOREIGN KEY (decided_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
