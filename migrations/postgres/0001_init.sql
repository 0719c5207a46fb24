-- roster live store (PostgreSQL). Keep in step with migrations/sqlite/0001_init.sql:
-- the same tables, columns and indexes; keys use the "C" collation so that the order
-- (and so keyset pagination) is bytewise, as in SQLite.
CREATE TABLE account (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    seats BIGINT NOT NULL,
    version BIGINT NOT NULL
);

CREATE TABLE objects (
    kind TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    team TEXT COLLATE "C",
    active BIGINT NOT NULL DEFAULT 0,
    secret TEXT,
    PRIMARY KEY (kind, key)
);
CREATE INDEX objects_team ON objects (kind, team, key);
CREATE INDEX objects_active ON objects (kind, active);

CREATE TABLE refs (
    kind TEXT COLLATE "C" NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    rel TEXT NOT NULL,
    ref_kind TEXT COLLATE "C" NOT NULL,
    ref_key TEXT COLLATE "C" NOT NULL
);
CREATE INDEX refs_from ON refs (kind, key);
CREATE INDEX refs_to ON refs (ref_kind, ref_key);

CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    login TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE idempotency (
    actor TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (actor, idem_key)
);

CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    before TEXT,
    after TEXT
);
