-- One row per account or client address with recent sign-in attempts. An
-- attempt locks its rows, counts the failures in the window and records
-- itself as one before its password or code is checked, so concurrent
-- guesses are counted one after another (on MySQL; SQLite writes one
-- transaction at a time). The background job removes rows with no recent
-- failure.
CREATE TABLE auth_subjects (
    scope   VARCHAR(16)  NOT NULL,
    subject VARCHAR(254) NOT NULL,
    PRIMARY KEY (scope, subject)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
