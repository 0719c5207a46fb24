-- roster live store (SQLite). Keep in step with migrations/postgres/0001_init.sql:
-- the same tables, columns and indexes; only the id column and collations differ.
CREATE TABLE account (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    seats BIGINT NOT NULL,
    version BIGINT NOT NULL
);

-- One row per object: kind, key, version, the public JSON body, plus the indexed
-- columns that scope checks and counting need.
CREATE TABLE objects (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL,
    team TEXT,
    active BIGINT NOT NULL DEFAULT 0,
    secret TEXT,
    PRIMARY KEY (kind, key)
);
CREATE INDEX objects_team ON objects (kind, team, key);
CREATE INDEX objects_active ON objects (kind, active);

-- Every reference from one object to another (rep → team, team → leader, …):
-- answers "who refers to X" on delete and rename without scanning bodies.
CREATE TABLE refs (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    rel TEXT NOT NULL,
    ref_kind TEXT NOT NULL,
    ref_key TEXT NOT NULL
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
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    before TEXT,
    after TEXT
);
