-- Witnesses outside Gatehouse (docs/audit-chain.md, "Witnesses"): each has
-- an Ed25519 public key and acts through one service account (scope
-- audit:witness). Registered by an operator (`gatehouse audit witness-add`);
-- retired, never deleted, so old co-signatures keep their witness.
CREATE TABLE audit_witnesses (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL UNIQUE,
    public_key          TEXT    NOT NULL UNIQUE,
    service_account_id  INTEGER NOT NULL REFERENCES service_accounts(id),
    created_at          INTEGER NOT NULL,
    retired_at          INTEGER
);

-- One co-signature per witness and checkpoint, checked before it is
-- stored; append-only.
CREATE TABLE audit_cosignatures (
    checkpoint  INTEGER NOT NULL REFERENCES audit_checkpoints(number),
    witness_id  INTEGER NOT NULL REFERENCES audit_witnesses(id),
    signature   TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (checkpoint, witness_id)
);

CREATE TRIGGER audit_cosignatures_no_update BEFORE UPDATE ON audit_cosignatures
BEGIN
    SELECT RAISE(ABORT, 'audit_cosignatures is append-only');
END;

CREATE TRIGGER audit_cosignatures_no_delete BEFORE DELETE ON audit_cosignatures
BEGIN
    SELECT RAISE(ABORT, 'audit_cosignatures is append-only');
END;
