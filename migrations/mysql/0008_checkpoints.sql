-- Signed checkpoints of the audit chain (see docs/audit-chain.md).
-- The private key is stored sealed under the master key; the public key is
-- published at /api/v1/audit/public-key.
CREATE TABLE audit_signing_keys (
    key_id      VARCHAR(16)  NOT NULL PRIMARY KEY,
    public_key  VARCHAR(64)  NOT NULL,
    secret_enc  VARCHAR(255) NOT NULL,
    created_at  BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_checkpoints (
    number      BIGINT       NOT NULL PRIMARY KEY,
    tree_size   BIGINT       NOT NULL,
    root        VARCHAR(64)  NOT NULL,
    head_hash   VARCHAR(64)  NOT NULL,
    prev_hash   VARCHAR(64)  NOT NULL,
    at          BIGINT       NOT NULL,
    key_id      VARCHAR(16)  NOT NULL,
    signature   VARCHAR(128) NOT NULL,
    -- The Merkle frontier after tree_size events (size:hash,...), so the
    -- next checkpoint hashes only the events added since. Verification
    -- never trusts it: it recomputes every root from the events.
    frontier    TEXT         NOT NULL,
    KEY audit_checkpoints_size (tree_size)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_checkpoints is append-only';

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_checkpoints is append-only';
