-- The officers' lists and stats at fleet scale (issue 20): each list pages
-- and counts through an index, never a scan.
-- A department's cases: `c.id IN (SELECT case_id FROM case_checks WHERE
-- department = $1)` reads the ids from the index alone.
CREATE INDEX case_checks_department_case ON case_checks(department, case_id);
-- Cases by status (`?status=open`), newest first.
CREATE INDEX cases_status_opened ON cases(status, opened_ms, id);
-- The violation list's order (started_ms, id) and the stats' counts by code
-- over a period, from the index alone.
CREATE INDEX violations_started ON violations(started_ms, code);
-- A page of cases' codes and the 一超四罚 count: by case, then code.
CREATE INDEX violations_case_code ON violations(case_id, code);
