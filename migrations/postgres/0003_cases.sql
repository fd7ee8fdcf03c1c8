-- Joint cases (一案多查): one case per incident, one check per department,
-- the parties of an overload (一超四罚), and an append-only audit trail.
CREATE TABLE cases (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plate       TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    firm_id     TEXT NOT NULL,
    status      TEXT NOT NULL,
    opened_ms   BIGINT NOT NULL,
    closed_ms   BIGINT
);
CREATE INDEX cases_plate ON cases(plate, opened_ms);
CREATE INDEX cases_opened ON cases(opened_ms);

-- A case's codes and the 一超四罚 count look violations up by case; SQLite
-- scans for these, a shared PostgreSQL with years of rows should not.
CREATE INDEX violations_case ON violations(case_id);

CREATE TABLE case_checks (
    case_id             BIGINT NOT NULL REFERENCES cases(id),
    department          TEXT NOT NULL,
    status              TEXT NOT NULL,
    finding             TEXT,
    penalty_party       TEXT,
    penalty_amount_cny  DOUBLE PRECISION,
    updated_ms          BIGINT NOT NULL,
    PRIMARY KEY (case_id, department)
);
CREATE INDEX case_checks_department ON case_checks(department, status);

-- `rowid` is SQLite's implicit row id made explicit: parties are listed in
-- the order they were added (vehicle, driver, firm, source unit) on both
-- backends, and PostgreSQL has no insertion order of its own.
CREATE TABLE case_parties (
    rowid    BIGINT GENERATED ALWAYS AS IDENTITY,
    case_id  BIGINT NOT NULL REFERENCES cases(id),
    role     TEXT NOT NULL,
    name     TEXT NOT NULL,
    PRIMARY KEY (case_id, role)
);

CREATE TABLE case_audit (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     BIGINT NOT NULL REFERENCES cases(id),
    at_ms       BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    department  TEXT,
    field       TEXT NOT NULL,
    before      TEXT,
    after       TEXT
);
CREATE INDEX case_audit_case ON case_audit(case_id, id);
