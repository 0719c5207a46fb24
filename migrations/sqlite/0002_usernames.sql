-- A representative's user name, lower case, indexed: the write engine refuses a create
-- or a change that would give two representatives one user name (rule 2). Keep in step
-- with migrations/postgres/0002_usernames.sql. Rows written before this migration are
-- filled from their bodies (SQLite's lower() folds ASCII letters only; the engine folds
-- every name it writes itself). Not a UNIQUE index: a database that already holds two
-- equal names still starts, and the engine refuses only new duplicates.
ALTER TABLE objects ADD COLUMN username TEXT;
UPDATE objects SET username = lower(json_extract(body, '$.username'))
    WHERE kind = 'representative';
CREATE INDEX objects_username ON objects (kind, username) WHERE username IS NOT NULL;
