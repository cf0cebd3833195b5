-- Service accounts for backend services and their API tokens (MySQL / MariaDB).

CREATE TABLE service_accounts (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(64)  NOT NULL,
    scopes      VARCHAR(200) NOT NULL,
    created_by  BIGINT,
    created_at  BIGINT       NOT NULL,
    disabled_at BIGINT,
    UNIQUE KEY service_accounts_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Only a SHA-256 of each token's secret is stored; the token is shown once.
CREATE TABLE api_tokens (
    id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    account_id   BIGINT       NOT NULL,
    secret_hash  VARCHAR(64)  NOT NULL,
    label        VARCHAR(100) NOT NULL,
    created_by   BIGINT,
    created_at   BIGINT       NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    revoked_by   BIGINT,
    last_used_at BIGINT,
    KEY api_tokens_account (account_id),
    CONSTRAINT api_tokens_account_fk FOREIGN KEY (account_id) REFERENCES service_accounts(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
