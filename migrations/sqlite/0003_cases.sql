-- Joint cases (一案多查): one case per incident, one check per department,
-- the parties of an overload (一超四罚), and an append-only audit trail.
CREATE TABLE cases (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    plate       TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    firm_id     TEXT NOT NULL,
    status      TEXT NOT NULL,
    opened_ms   INTEGER NOT NULL,
    closed_ms   INTEGER
);
CREATE INDEX cases_plate ON cases(plate, opened_ms);
CREATE INDEX cases_opened ON cases(opened_ms);

CREATE TABLE case_checks (
    case_id             INTEGER NOT NULL REFERENCES cases(id),
    department          TEXT NOT NULL,
    status              TEXT NOT NULL,
    finding             TEXT,
    penalty_party       TEXT,
    penalty_amount_cny  REAL,
    updated_ms          INTEGER NOT NULL,
    PRIMARY KEY (case_id, department)
);
CREATE INDEX case_checks_department ON case_checks(department, status);

CREATE TABLE case_parties (
    case_id  INTEGER NOT NULL REFERENCES cases(id),
    role     TEXT NOT NULL,
    name     TEXT NOT NULL,
    PRIMARY KEY (case_id, role)
);

CREATE TABLE case_audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id     INTEGER NOT NULL REFERENCES cases(id),
    at_ms       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    department  TEXT,
    field       TEXT NOT NULL,
    before      TEXT,
    after       TEXT
);
CREATE INDEX case_audit_case ON case_audit(case_id, id);
