-- Tokens with a lifecycle. Each token gets a public `id` (the first 16 hex digits of
-- its SHA-256 hash: tokens made before this migration get theirs the same way), by
-- which it is listed and revoked (revoking deletes the row) and which the audit log
-- records for every write (`audit.token_id`; never the value). `permission` is
-- `read` (GET and HEAD only) or `write`; `expires_at` (RFC 3339, UTC) none: never.
-- Existing tokens keep working as `write` tokens without expiry. `last_used_at` is
-- updated at most once a minute. Keep in step with migrations/postgres/0004_tokens.sql.
ALTER TABLE tokens ADD COLUMN id TEXT;
UPDATE tokens SET id = substr(hash, 1, 16);
CREATE UNIQUE INDEX tokens_id ON tokens (id);
CREATE INDEX tokens_principal ON tokens (role, login);
ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN permission TEXT NOT NULL DEFAULT 'write';
ALTER TABLE tokens ADD COLUMN expires_at TEXT;
ALTER TABLE tokens ADD COLUMN last_used_at TEXT;
ALTER TABLE audit ADD COLUMN token_id TEXT;
