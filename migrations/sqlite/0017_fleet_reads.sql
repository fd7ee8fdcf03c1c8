-- The officers' lists at fleet scale (issue 20): the violation list's order,
-- (started_ms, id), straight from an index, so that a page stops at its
-- limit instead of sorting every matching violation (SQLite appends the
-- rowid, which is id, to every index).
CREATE INDEX violations_started_id ON violations(started_ms);
