-- A withdrawn violation (its evidence fell away: a TRACK_GAP the terminal's
-- 补报 backfill covered) costs its firm nothing. Before this, a withdrawal
-- left a credit deduction it had been charged standing: reverse those once,
-- with the audit line muckwatch now writes when it reverses one itself.
INSERT INTO case_audit (case_id, at_ms, actor, department, field, before, after)
SELECT d.case_id,
       CAST(strftime('%s', 'now') AS INTEGER) * 1000,
       'system', NULL, 'credit',
       'deducted: ' || v.code || ' #' || CAST(v.id AS TEXT),
       'reversed: ' || v.code || ' #' || CAST(v.id AS TEXT) || ' (violation withdrawn)'
FROM credit_deductions d JOIN violations v ON v.id = d.violation_id
WHERE v.status = 'withdrawn'
ORDER BY d.case_id, v.id;

DELETE FROM credit_deductions
WHERE violation_id IN (SELECT id FROM violations WHERE status = 'withdrawn');
