-- Background work that one server at a time may do (the access jobs, the
-- session janitor): the server holding a lease renews it on every pass; when
-- it stops (crashed, stopped, cut off), another takes the lease once it has
-- expired. Holders are random per process.
CREATE TABLE job_leases (
    name       VARCHAR(64) NOT NULL PRIMARY KEY,
    holder     VARCHAR(64) NOT NULL,
    expires_at BIGINT      NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO job_leases (name, holder, expires_at) VALUES ('access_jobs', '', 0), ('janitor', '', 0);
