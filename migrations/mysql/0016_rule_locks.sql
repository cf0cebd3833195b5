-- Rows that stand for a set a rule reads as a whole. A transaction that
-- decides by the set of administrators (granting, revoking, approving,
-- suspending, offboarding) locks its row first (SELECT ... FOR UPDATE, before
-- any plain read, so that InnoDB's snapshot starts after the previous
-- holder committed): two such decisions never interleave (two
-- administrators suspending each other at once would otherwise leave none).
CREATE TABLE rule_locks (
    name VARCHAR(64) NOT NULL PRIMARY KEY
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT INTO rule_locks (name) VALUES ('administrators');
