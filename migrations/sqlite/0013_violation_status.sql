-- A violation's status (issue 14): 'raised', or 'withdrawn' when the evidence
-- behind it fell away (a TRACK_GAP whose silent span the terminal's stored
-- 补报 backfill covers). Withdrawn violations are kept, not deleted.
ALTER TABLE violations ADD COLUMN status TEXT NOT NULL DEFAULT 'raised';
