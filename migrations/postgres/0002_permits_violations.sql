-- Permits and violations. A permit is kept as its JSON document (the
-- contract's fields) plus the columns queries filter on.
CREATE TABLE permits (
    id          TEXT PRIMARY KEY,
    firm_id     TEXT NOT NULL REFERENCES firms(id),
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL,
    updated_ms  BIGINT NOT NULL
);
CREATE INDEX permits_firm ON permits(firm_id);

CREATE TABLE permit_plates (
    permit_id  TEXT NOT NULL REFERENCES permits(id),
    plate      TEXT NOT NULL REFERENCES vehicles(plate),
    PRIMARY KEY (permit_id, plate)
);
CREATE INDEX permit_plates_plate ON permit_plates(plate);

-- One row per episode; ended_ms is NULL while it lasts. `fences` is a JSON
-- array of geofence ids, as text (as in SQLite).
CREATE TABLE violations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        TEXT NOT NULL,
    plate       TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    firm_id     TEXT NOT NULL,
    permit_id   TEXT,
    started_ms  BIGINT NOT NULL,
    ended_ms    BIGINT,
    lat         DOUBLE PRECISION NOT NULL,
    lon         DOUBLE PRECISION NOT NULL,
    measured    DOUBLE PRECISION NOT NULL,
    fences      TEXT NOT NULL,
    case_id     BIGINT,
    created_ms  BIGINT NOT NULL,
    UNIQUE (device_id, code, started_ms)
);
CREATE INDEX violations_plate ON violations(plate, started_ms);
CREATE INDEX violations_code ON violations(code, started_ms);
CREATE INDEX violations_firm ON violations(firm_id, started_ms);
