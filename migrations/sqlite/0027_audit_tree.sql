-- Stored interior nodes of the audit chain's Merkle tree (RFC 9162), so
-- inclusion and consistency proofs read O(log n) rows instead of every
-- event hash. A node is the root of the perfect subtree of 2^height
-- leaves starting at leaf idx * 2^height; only heights 4, 8, 12, ... are
-- kept (one row per 15 events): any other subtree is at most 8 stored
-- nodes (or events) below it. Filled by the checkpoint job after each
-- checkpoint, from the events it signed, and checked against the signed
-- root; a trail older than this table is filled on the job's first pass.
-- Proofs are always checked against signed roots, so the store is an
-- index: it is never trusted on its own.
CREATE TABLE audit_tree_nodes (
    height  INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hash    TEXT    NOT NULL,
    PRIMARY KEY (height, idx)
) WITHOUT ROWID;

CREATE TRIGGER audit_tree_nodes_no_update BEFORE UPDATE ON audit_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_nodes is append-only');
END;

CREATE TRIGGER audit_tree_nodes_no_delete BEFORE DELETE ON audit_tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'audit_tree_nodes is append-only');
END;

-- How far the nodes go: every stored node lies within leaves 0..size, and
-- frontier (the same text as audit_checkpoints.frontier) carries the
-- partial subtrees after them.
CREATE TABLE audit_tree_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     INTEGER NOT NULL,
    frontier TEXT    NOT NULL
);
INSERT INTO audit_tree_state (id, size, frontier) VALUES (1, 0, '');
