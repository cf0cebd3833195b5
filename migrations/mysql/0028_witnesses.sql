-- Witnesses outside Gatehouse (docs/audit-chain.md, "Witnesses"): each has
-- an Ed25519 public key and acts through one service account (scope
-- audit:witness). Registered by an operator (`gatehouse audit witness-add`);
-- retired, never deleted, so old co-signatures keep their witness.
CREATE TABLE audit_witnesses (
    id                  BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name                VARCHAR(64)  NOT NULL,
    public_key          CHAR(64)     NOT NULL,
    service_account_id  BIGINT       NOT NULL,
    created_at          BIGINT       NOT NULL,
    retired_at          BIGINT       NULL,
    UNIQUE KEY audit_witnesses_name (name),
    UNIQUE KEY audit_witnesses_key (public_key),
    CONSTRAINT audit_witnesses_account FOREIGN KEY (service_account_id) REFERENCES service_accounts(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One co-signature per witness and checkpoint, checked before it is
-- stored; append-only.
CREATE TABLE audit_cosignatures (
    checkpoint  BIGINT    NOT NULL,
    witness_id  BIGINT    NOT NULL,
    signature   CHAR(128) NOT NULL,
    at          BIGINT    NOT NULL,
    PRIMARY KEY (checkpoint, witness_id),
    CONSTRAINT audit_cosignatures_checkpoint FOREIGN KEY (checkpoint) REFERENCES audit_checkpoints(number),
    CONSTRAINT audit_cosignatures_witness FOREIGN KEY (witness_id) REFERENCES audit_witnesses(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TRIGGER audit_cosignatures_no_update BEFORE UPDATE ON audit_cosignatures
FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_cosignatures is append-only';

CREATE TRIGGER audit_cosignatures_no_delete BEFORE DELETE ON audit_cosignatures
FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit_cosignatures is append-only';
