-- muckwatch schema, SQLite. Times are UTC milliseconds since the epoch.
CREATE TABLE firms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);

CREATE TABLE vehicles (
    plate         TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL UNIQUE,
    firm_id       TEXT NOT NULL REFERENCES firms(id),
    rated_load_t  REAL NOT NULL,
    created_ms    INTEGER NOT NULL
);
CREATE INDEX vehicles_firm ON vehicles(firm_id);

-- One row per fix; the key makes duplicates (same device and time) free to drop.
CREATE TABLE fixes (
    device_id     TEXT NOT NULL,
    ts_ms         INTEGER NOT NULL,
    lat           REAL NOT NULL,
    lon           REAL NOT NULL,
    speed_kmh     REAL NOT NULL,
    heading       REAL,
    acc           INTEGER,
    tipper_up     INTEGER,
    cover_closed  INTEGER,
    load_t        REAL,
    received_ms   INTEGER NOT NULL,
    PRIMARY KEY (device_id, ts_ms)
) WITHOUT ROWID;

-- Refused messages, bounded: the oldest rows are pruned.
CREATE TABLE dead_letters (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_ms  INTEGER NOT NULL,
    topic        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    payload      TEXT NOT NULL
);

CREATE TABLE api_tokens (
    hash        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    created_ms  INTEGER NOT NULL
);
