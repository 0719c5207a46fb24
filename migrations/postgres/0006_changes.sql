-- The change feed (GET /v1/changes). Every write to `objects` (create, update, rename,
-- delete, and the referrers a rename rewrites) adds one row per key it touched, in the
-- same transaction: a rename adds the old key and the new one.
--
-- Commit order: a sequence value taken inside a transaction is not commit order in
-- general (a transaction that took 10 may commit after the one that took 11, and a
-- reader in between would see 11 and skip 10 for ever). Here every write transaction
-- first takes the transaction-scoped advisory lock 7140002 (store.rs, `Db::begin`),
-- held until it commits or rolls back, on every replica sharing this database: only
-- one writer at a time takes values from `changes_seq_seq`, and the next writer takes
-- its values only after the previous one has committed (and become visible). So `seq`
-- grows in commit order; a rolled-back writer (a dry run, a refused batch) only leaves
-- a gap, which a reader never waits for. Keep in step with migrations/sqlite/0006_changes.sql.
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL
);
CREATE INDEX changes_key ON changes (kind, key);
CREATE TABLE feed (
    id BIGINT PRIMARY KEY,
    epoch TEXT NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO feed (id, epoch, pruned_through)
    VALUES (1, md5(random()::text || clock_timestamp()::text), 0);
