-- Check deadlines (按期处置): when each check is due and when it was decided.
-- Checks filed before this migration are due 72 hours (the default) after
-- they were filed, as their audit line records; decided ones get the time
-- of their decision from the audit trail.
ALTER TABLE case_checks ADD COLUMN due_ms BIGINT;
ALTER TABLE case_checks ADD COLUMN decided_ms BIGINT;
UPDATE case_checks SET due_ms = 259200000 + COALESCE(
    (SELECT MIN(a.at_ms) FROM case_audit a WHERE a.case_id = case_checks.case_id
        AND a.department = case_checks.department AND a.field = 'check'),
    (SELECT c.opened_ms FROM cases c WHERE c.id = case_checks.case_id));
UPDATE case_checks SET decided_ms = (SELECT MIN(a.at_ms) FROM case_audit a
    WHERE a.case_id = case_checks.case_id AND a.department = case_checks.department
        AND a.field = 'status' AND a.after = 'decided')
    WHERE status IN ('decided', 'closed');
CREATE INDEX case_checks_due ON case_checks(department, due_ms);

-- API tokens that expire or are revoked (`muckwatch token revoke`).
ALTER TABLE api_tokens ADD COLUMN expires_ms BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_ms BIGINT;
