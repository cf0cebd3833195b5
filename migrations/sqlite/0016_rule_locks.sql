-- Rows that stand for a set a rule reads as a whole. A transaction that
-- decides by the set of administrators (granting, revoking, approving,
-- suspending, offboarding) locks its row before anything else, so on MySQL
-- two such decisions never interleave (two administrators suspending each
-- other at once would otherwise leave none). SQLite writes one transaction
-- at a time; the row is there for the same code.
CREATE TABLE rule_locks (
    name TEXT NOT NULL PRIMARY KEY
);
INSERT INTO rule_locks (name) VALUES ('administrators');
