-- A target's private certificate authority (PEM), for servers whose TLS
-- certificate is signed by one (Amazon RDS, a company CA); NULL verifies
-- against public roots. A CA certificate is public: stored as it is.
ALTER TABLE db_targets ADD COLUMN tls_ca TEXT NULL;
