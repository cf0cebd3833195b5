-- Service accounts for backend services and their API tokens (SQLite).

CREATE TABLE service_accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    scopes      TEXT    NOT NULL,
    created_by  INTEGER REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
);

-- Only a SHA-256 of each token's secret is stored; the token is shown once.
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES service_accounts(id),
    secret_hash  TEXT    NOT NULL,
    label        TEXT    NOT NULL,
    created_by   INTEGER REFERENCES users(id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    revoked_by   INTEGER REFERENCES users(id),
    last_used_at INTEGER
);
CREATE INDEX api_tokens_account ON api_tokens(account_id);
