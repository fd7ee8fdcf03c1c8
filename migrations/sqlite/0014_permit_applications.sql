-- Permit applications (不见面审批, issue 19): what a firm asked for (the
-- permit's fields, JSON), the automatic checks' latest results (JSON, each
-- named with pass/fail and why), and the bureau's decision. An approved
-- application names the permit it created. Every step leaves an audit line.
CREATE TABLE permit_applications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    firm_id       TEXT NOT NULL,
    status        TEXT NOT NULL,
    request       TEXT NOT NULL,
    checks        TEXT NOT NULL,
    submitted_ms  INTEGER NOT NULL,
    submitted_by  TEXT NOT NULL,
    decided_ms    INTEGER,
    decided_by    TEXT,
    reason        TEXT,
    permit_id     TEXT,
    updated_ms    INTEGER NOT NULL
);
-- A firm's own applications; the review queue (`?status=submitted`).
CREATE INDEX permit_applications_firm ON permit_applications(firm_id, id);
CREATE INDEX permit_applications_status ON permit_applications(status, id);

CREATE TABLE permit_application_audit (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id  INTEGER NOT NULL REFERENCES permit_applications(id),
    at_ms           INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    field           TEXT NOT NULL,
    before          TEXT,
    after           TEXT
);
CREATE INDEX permit_application_audit_application
    ON permit_application_audit(application_id, id);
