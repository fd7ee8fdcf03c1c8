-- muckwatch schema, PostgreSQL. The same tables and column names as
-- migrations/sqlite/, so that both backends run the same queries; times are
-- UTC milliseconds since the epoch (BIGINT), as in SQLite.
CREATE TABLE firms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE vehicles (
    plate         TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL UNIQUE,
    firm_id       TEXT NOT NULL REFERENCES firms(id),
    rated_load_t  DOUBLE PRECISION NOT NULL,
    created_ms    BIGINT NOT NULL
);
CREATE INDEX vehicles_firm ON vehicles(firm_id);

-- One row per fix; the key makes duplicates (same device and time) free to
-- drop, and serves a vehicle's time-range query (device_id = ? AND ts_ms
-- BETWEEN ? AND ?) as one index range scan.
CREATE TABLE fixes (
    device_id     TEXT NOT NULL,
    ts_ms         BIGINT NOT NULL,
    lat           DOUBLE PRECISION NOT NULL,
    lon           DOUBLE PRECISION NOT NULL,
    speed_kmh     DOUBLE PRECISION NOT NULL,
    heading       DOUBLE PRECISION,
    acc           BOOLEAN,
    tipper_up     BOOLEAN,
    cover_closed  BOOLEAN,
    load_t        DOUBLE PRECISION,
    received_ms   BIGINT NOT NULL,
    PRIMARY KEY (device_id, ts_ms)
);

-- Refused messages, bounded: the oldest rows are pruned.
CREATE TABLE dead_letters (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_ms  BIGINT NOT NULL,
    topic        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    payload      TEXT NOT NULL
);

CREATE TABLE api_tokens (
    hash        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
