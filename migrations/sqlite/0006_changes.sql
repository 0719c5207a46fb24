-- The change feed (GET /v1/changes). Every write to `objects` (create, update, rename,
-- delete, and the referrers a rename rewrites) adds one row per key it touched, in the
-- same transaction: a rename adds the old key and the new one. Writers are serialized
-- (one write connection and BEGIN IMMEDIATE), so `seq` grows in commit order.
-- `feed.epoch` names this database's feed (a cursor from another database is refused);
-- `feed.pruned_through` is the highest `seq` dropped by retention (a cursor below it is
-- too old). Keep in step with migrations/postgres/0006_changes.sql.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX changes_key ON changes (kind, key);
CREATE TABLE feed (
    id INTEGER PRIMARY KEY,
    epoch TEXT NOT NULL,
    pruned_through INTEGER NOT NULL
);
INSERT INTO feed (id, epoch, pruned_through) VALUES (1, lower(hex(randomblob(16))), 0);
