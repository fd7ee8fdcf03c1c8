-- Firm credit (信用评价): the violations that cost their firm points, one row
-- per violation at most (charged once, however many departments penalise its
-- case). Points, cycle and grades are configuration, applied when read; a
-- reversal deletes the row and leaves a line in the case's audit trail.
CREATE TABLE credit_deductions (
    violation_id  BIGINT PRIMARY KEY REFERENCES violations(id),
    firm_id       TEXT NOT NULL,
    case_id       BIGINT NOT NULL REFERENCES cases(id),
    at_ms         BIGINT NOT NULL
);
CREATE INDEX credit_deductions_firm ON credit_deductions(firm_id);
CREATE INDEX credit_deductions_case ON credit_deductions(case_id);
