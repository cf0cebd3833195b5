-- Access reviews. A campaign certifies or removes the standing access in
-- its scope by a deadline; at its start it takes a snapshot, one item per
-- grant (or service-account token), with the facts a reviewer decides on.
-- Rows are never deleted: a closed campaign is the evidence.
CREATE TABLE review_campaigns (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL,
    -- domain::reviews::Scope in its stored form.
    scope         TEXT    NOT NULL,
    -- What happens to undecided items at the deadline ('revoke' or
    -- 'keep_and_flag'), for critical items and for the rest.
    critical_rule TEXT    NOT NULL,
    other_rule    TEXT    NOT NULL,
    every_months  INTEGER,
    -- The campaign this one recurs from: unique, so that however many
    -- servers run the job, a campaign has one successor.
    parent_id     INTEGER UNIQUE REFERENCES review_campaigns(id),
    starts_at     INTEGER NOT NULL,
    due_at        INTEGER NOT NULL,
    created_by    INTEGER REFERENCES users(id),
    created_at    INTEGER NOT NULL,
    -- NULL until the snapshot is taken (a recurrence created ahead of its day).
    started_at    INTEGER,
    closed_at     INTEGER,
    -- NULL when the deadline closed it.
    closed_by     INTEGER REFERENCES users(id),
    -- The report as it stood at close (CSV), and its SHA-256 (also in the
    -- closing event): the report is frozen, names as they were then.
    report        TEXT,
    report_sha256 TEXT,
    -- The last reminder sent (domain::reviews::Reminder), if any.
    reminded      TEXT
);
CREATE INDEX review_campaigns_open ON review_campaigns(closed_at, due_at);

CREATE TABLE review_items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    campaign_id   INTEGER NOT NULL REFERENCES review_campaigns(id),
    -- 'grant' or 'token'.
    kind          TEXT    NOT NULL,
    grant_id      INTEGER REFERENCES grants(id),
    token_id      INTEGER REFERENCES api_tokens(id),
    -- The employee holding the grant (NULL for a token).
    holder_id     INTEGER REFERENCES users(id),
    -- Role key, or the service account's name for a token.
    role          TEXT    NOT NULL,
    permissions   TEXT    NOT NULL,
    critical      INTEGER NOT NULL,
    granted_at    INTEGER NOT NULL,
    granted_by    INTEGER,
    reason        TEXT    NOT NULL,
    expires_at    INTEGER,
    last_sign_in  INTEGER,
    -- Last access check or reported customer-data access under the grant
    -- (or the token's last use).
    last_used     INTEGER,
    -- domain::reviews::Reviewers: 'administrators', 'none' or 'people:1,2'.
    reviewers     TEXT    NOT NULL,
    decision      TEXT,
    decision_expires_at INTEGER,
    decided_by    INTEGER REFERENCES users(id),
    decided_at    INTEGER,
    comment       TEXT,
    -- Filled at close: 'kept', 'revoked', 'converted', 'kept_flagged'.
    outcome       TEXT,
    flags         TEXT
);
CREATE INDEX review_items_campaign ON review_items(campaign_id, id);

-- Employees who review a role's grants (without one, administrators do).
CREATE TABLE role_owners (
    role_key   TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users(id),
    added_by   INTEGER REFERENCES users(id),
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (role_key, user_id)
);
