-- Idempotency keys of event batches posted by services (MySQL / MariaDB).
CREATE TABLE api_idempotency (
    account_id   BIGINT       NOT NULL,
    idem_key     VARCHAR(128) NOT NULL,
    request_hash VARCHAR(64)  NOT NULL,
    first_seq    BIGINT       NOT NULL,
    last_seq     BIGINT       NOT NULL,
    accepted     BIGINT       NOT NULL,
    created_at   BIGINT       NOT NULL,
    PRIMARY KEY (account_id, idem_key),
    CONSTRAINT api_idempotency_account_fk FOREIGN KEY (account_id) REFERENCES service_accounts(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
