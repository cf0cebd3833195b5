-- Background work that one server at a time may do (the access jobs, the
-- session janitor): the server holding a lease renews it on every pass; when
-- it stops (crashed, stopped, cut off), another takes the lease once it has
-- expired. Holders are random per process.
CREATE TABLE job_leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO job_leases (name, holder, expires_at) VALUES ('access_jobs', '', 0), ('janitor', '', 0);
