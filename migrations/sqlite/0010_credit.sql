-- Firm credit (信用评价): the violations that cost their firm points, one row
-- per violation at most (charged once, however many departments penalise its
-- case). Points, cycle and grades are configuration, applied when read; a
-- reversal deletes the row and leaves a line in the case's audit trail.
CREATE TABLE credit_deductions (
    violation_id  INTEGER PRIMARY KEY REFERENCES violations(id),
    firm_id       TEXT NOT NULL,
    case_id       INTEGER NOT NULL REFERENCES cases(id),
    at_ms         INTEGER NOT NULL
);
CREATE INDEX credit_deductions_firm ON credit_deductions(firm_id);
CREATE INDEX credit_deductions_case ON credit_deductions(case_id);

-- Random inspections (双随机一公开): the inspector pool, each draw with its
-- seed and population hash (re-runnable by anyone), and one row per drawn
-- object with its inspectors (ids, JSON) and result.
CREATE TABLE inspectors (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    department        TEXT NOT NULL,
    cert_valid_until  TEXT NOT NULL,
    created_ms        INTEGER NOT NULL
);

CREATE TABLE inspection_draws (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    item             TEXT NOT NULL,
    population       TEXT NOT NULL,
    request          TEXT NOT NULL,
    seed             INTEGER NOT NULL,
    population_hash  TEXT NOT NULL,
    drawn_ms         INTEGER NOT NULL
);

CREATE TABLE inspection_objects (
    draw_id      INTEGER NOT NULL REFERENCES inspection_draws(id),
    object_id    TEXT NOT NULL,
    inspectors   TEXT NOT NULL,
    departments  TEXT NOT NULL,
    result       TEXT,
    finding      TEXT,
    result_ms    INTEGER,
    PRIMARY KEY (draw_id, object_id)
);
