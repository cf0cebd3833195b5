-- Elevation, second part: customer-scoped grants, per-role approval
-- policies, extensions, break-glass activations with their post-incident
-- review, and an index from a grant to the audit events recorded under it.

-- A grant limited to some customers (a JSON array of customer ids); NULL
-- means every customer. A scoped grant counts only in an access check that
-- names one of its customers.
ALTER TABLE grants ADD COLUMN customer_scope TEXT;

ALTER TABLE elevation_requests ADD COLUMN customer_scope TEXT;
-- 'request' (approved by others) or 'breakglass' (self-activated).
ALTER TABLE elevation_requests ADD COLUMN kind TEXT NOT NULL DEFAULT 'request';
-- The active elevation this request extends (at most one extension each).
ALTER TABLE elevation_requests ADD COLUMN extends_id INTEGER REFERENCES elevation_requests(id);
-- Named approvers when the request was made (comma-separated user ids;
-- empty: holders of requests:approve).
ALTER TABLE elevation_requests ADD COLUMN approvers TEXT NOT NULL DEFAULT '';
ALTER TABLE elevation_requests ADD COLUMN reviewed_by INTEGER REFERENCES users(id);
ALTER TABLE elevation_requests ADD COLUMN reviewed_at INTEGER;
ALTER TABLE elevation_requests ADD COLUMN review_note TEXT;
CREATE INDEX elevation_requests_extends ON elevation_requests(extends_id);
CREATE INDEX elevation_requests_kind ON elevation_requests(kind, reviewed_at);

-- Who approves requests for a role, and how many distinct approvals.
CREATE TABLE approval_policies (
    role_key         TEXT    PRIMARY KEY,
    approvals_needed INTEGER NOT NULL,
    approvers        TEXT    NOT NULL DEFAULT '',
    updated_by       INTEGER REFERENCES users(id),
    updated_at       INTEGER NOT NULL
);

-- Audit events whose details name a grant (access checks, reported
-- accesses, the grant's own life). Written in the same transaction as the
-- event; the event itself (hash-chained) carries the grant id.
CREATE TABLE audit_grant_refs (
    grant_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (grant_id, seq)
);

CREATE TRIGGER audit_grant_refs_no_update BEFORE UPDATE ON audit_grant_refs
BEGIN
    SELECT RAISE(ABORT, 'audit_grant_refs is append-only');
END;

CREATE TRIGGER audit_grant_refs_no_delete BEFORE DELETE ON audit_grant_refs
BEGIN
    SELECT RAISE(ABORT, 'audit_grant_refs is append-only');
END;
