-- Access reviews. A campaign certifies or removes the standing access in
-- its scope by a deadline; at its start it takes a snapshot, one item per
-- grant (or service-account token), with the facts a reviewer decides on.
-- Rows are never deleted: a closed campaign is the evidence.
CREATE TABLE review_campaigns (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(480) NOT NULL,
    -- domain::reviews::Scope in its stored form.
    scope         TEXT         NOT NULL,
    -- What happens to undecided items at the deadline ('revoke' or
    -- 'keep_and_flag'), for critical items and for the rest.
    critical_rule VARCHAR(16)  NOT NULL,
    other_rule    VARCHAR(16)  NOT NULL,
    every_months  BIGINT,
    -- The campaign this one recurs from: unique, so that however many
    -- servers run the job, a campaign has one successor.
    parent_id     BIGINT,
    starts_at     BIGINT       NOT NULL,
    due_at        BIGINT       NOT NULL,
    created_by    BIGINT,
    created_at    BIGINT       NOT NULL,
    -- NULL until the snapshot is taken (a recurrence created ahead of its day).
    started_at    BIGINT,
    closed_at     BIGINT,
    -- NULL when the deadline closed it.
    closed_by     BIGINT,
    -- The report as it stood at close (CSV), and its SHA-256 (also in the
    -- closing event): the report is frozen, names as they were then.
    report        MEDIUMTEXT,
    report_sha256 VARCHAR(64),
    -- The last reminder sent (domain::reviews::Reminder), if any.
    reminded      VARCHAR(16),
    UNIQUE KEY review_campaigns_parent (parent_id),
    KEY review_campaigns_open (closed_at, due_at),
    CONSTRAINT review_campaigns_parent_fk FOREIGN KEY (parent_id) REFERENCES review_campaigns(id),
    CONSTRAINT review_campaigns_creator_fk FOREIGN KEY (created_by) REFERENCES users(id),
    CONSTRAINT review_campaigns_closer_fk FOREIGN KEY (closed_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE review_items (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    campaign_id   BIGINT       NOT NULL,
    -- 'grant' or 'token'.
    kind          VARCHAR(8)   NOT NULL,
    grant_id      BIGINT,
    token_id      BIGINT,
    -- The employee holding the grant (NULL for a token).
    holder_id     BIGINT,
    -- Role key, or the service account's name for a token.
    role          VARCHAR(255) NOT NULL,
    permissions   TEXT         NOT NULL,
    critical      BIGINT       NOT NULL,
    granted_at    BIGINT       NOT NULL,
    granted_by    BIGINT,
    reason        TEXT         NOT NULL,
    expires_at    BIGINT,
    last_sign_in  BIGINT,
    -- Last access check or reported customer-data access under the grant
    -- (or the token's last use).
    last_used     BIGINT,
    -- domain::reviews::Reviewers: 'administrators', 'none' or 'people:1,2'.
    reviewers     TEXT         NOT NULL,
    decision      VARCHAR(16),
    decision_expires_at BIGINT,
    decided_by    BIGINT,
    decided_at    BIGINT,
    comment       TEXT,
    -- Filled at close: 'kept', 'revoked', 'converted', 'kept_flagged'.
    outcome       VARCHAR(16),
    flags         TEXT,
    KEY review_items_campaign (campaign_id, id),
    CONSTRAINT review_items_campaign_fk FOREIGN KEY (campaign_id) REFERENCES review_campaigns(id),
    CONSTRAINT review_items_grant_fk FOREIGN KEY (grant_id) REFERENCES grants(id),
    CONSTRAINT review_items_token_fk FOREIGN KEY (token_id) REFERENCES api_tokens(id),
    CONSTRAINT review_items_holder_fk FOREIGN KEY (holder_id) REFERENCES users(id),
    CONSTRAINT review_items_decider_fk FOREIGN KEY (decided_by) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Employees who review a role's grants (without one, administrators do).
CREATE TABLE role_owners (
    role_key   VARCHAR(64)  NOT NULL,
    user_id    BIGINT       NOT NULL,
    added_by   BIGINT,
    added_at   BIGINT       NOT NULL,
    PRIMARY KEY (role_key, user_id),
    CONSTRAINT role_owners_user_fk FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
