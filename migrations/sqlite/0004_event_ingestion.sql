-- Idempotency keys of event batches posted by services (SQLite).
CREATE TABLE api_idempotency (
    account_id   INTEGER NOT NULL REFERENCES service_accounts(id),
    idem_key     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    first_seq    INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL,
    accepted     INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
