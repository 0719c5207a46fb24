-- The apply lease: at most one per account (the row's `account` is the account row's
-- id, 1). `roster apply` takes it before its first write, renews it while it writes and
-- releases it at the end; a lease whose `expires_at` has passed is free, so a crashed
-- client's lease lapses by itself. Times are unix milliseconds (UTC) so that the
-- take's `expires_at <= now` comparison is numeric. `principal` is who took it
-- (`administrator:LOGIN` or `manager:LOGIN`); `id` is the holder's handle, never shown
-- to others. Keep in step with migrations/postgres/0003_lease.sql.
CREATE TABLE lease (
    account BIGINT PRIMARY KEY,
    id TEXT NOT NULL,
    holder TEXT NOT NULL,
    purpose TEXT NOT NULL,
    principal TEXT NOT NULL,
    acquired_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
