-- Signed checkpoints of the audit chain (see docs/audit-chain.md).
-- The private key is stored sealed under the master key; the public key is
-- published at /api/v1/audit/public-key.
CREATE TABLE audit_signing_keys (
    key_id      TEXT    PRIMARY KEY,
    public_key  TEXT    NOT NULL,
    secret_enc  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE audit_checkpoints (
    number      INTEGER PRIMARY KEY,
    tree_size   INTEGER NOT NULL,
    root        TEXT    NOT NULL,
    head_hash   TEXT    NOT NULL,
    prev_hash   TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    key_id      TEXT    NOT NULL,
    signature   TEXT    NOT NULL,
    -- The Merkle frontier after tree_size events (size:hash,...), so the
    -- next checkpoint hashes only the events added since. Verification
    -- never trusts it: it recomputes every root from the events.
    frontier    TEXT    NOT NULL
);
CREATE INDEX audit_checkpoints_size ON audit_checkpoints(tree_size);

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only');
END;
