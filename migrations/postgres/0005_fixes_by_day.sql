-- `fixes` partitioned by day, in place. A province's fleet reports about a
-- hundred million fixes a night: one table with row-by-row retention
-- deletes does not keep up; a partition a day is dropped whole instead.
--
-- Ranges are of ts_ms, one UTC day each (fixes_YYYYMMDD, made ahead by
-- muckwatch itself), listed in fix_partitions. The table found here keeps
-- every row and becomes `fixes_past`, the partition of everything before
-- tomorrow (UTC); `fixes_default` takes what no partition does. Rows are
-- not copied: the old table is attached as it is (one scan to check its
-- range), so the migration of a large table is quick.

ALTER TABLE fixes RENAME TO fixes_past;
ALTER INDEX fixes_pkey RENAME TO fixes_past_pkey;
ALTER INDEX fixes_ts RENAME TO fixes_past_ts;

-- The same columns as the table found (ATTACH needs them exactly); the key
-- includes the partition key (ts_ms), so duplicates (same device and time)
-- are still refused, by the partition that holds that time.
CREATE TABLE fixes (
    LIKE fixes_past INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (device_id, ts_ms)
) PARTITION BY RANGE (ts_ms);
CREATE INDEX fixes_ts ON fixes (ts_ms);

CREATE TABLE fixes_default PARTITION OF fixes DEFAULT;

-- The range partitions muckwatch made: kind 'day' (dropped whole past
-- retention) or 'past' (fixes_past, pruned row by row until it is all
-- past retention, then dropped).
CREATE TABLE fix_partitions (
    name     TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    from_ms  BIGINT NOT NULL,
    to_ms    BIGINT NOT NULL
);

DO $$
DECLARE
    day_ms CONSTANT BIGINT := 86400000;
    cut BIGINT := (floor(extract(epoch FROM now()) * 1000 / day_ms)::BIGINT + 1) * day_ms;
BEGIN
    -- Fixes stamped after the cut (a terminal clock ahead) move to the default partition.
    INSERT INTO fixes SELECT * FROM fixes_past WHERE ts_ms >= cut;
    DELETE FROM fixes_past WHERE ts_ms >= cut;
    -- With this constraint in place, attaching checks no row again.
    EXECUTE format('ALTER TABLE fixes_past ADD CONSTRAINT fixes_past_range CHECK (ts_ms < %s)', cut);
    EXECUTE format('ALTER TABLE fixes ATTACH PARTITION fixes_past FOR VALUES FROM (MINVALUE) TO (%s)', cut);
    INSERT INTO fix_partitions (name, kind, from_ms, to_ms)
        VALUES ('fixes_past', 'past', -9223372036854775808, cut);
END $$;

-- The evidence of violations (their fixes, within a margin) copied out of
-- a partition before it is dropped; kept with the cases, as long as they are.
CREATE TABLE evidence_fixes (
    LIKE fixes INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
    PRIMARY KEY (device_id, ts_ms)
);

-- What reads of fixes see: the partitions, and the kept evidence that is
-- not (or no longer) in them.
CREATE VIEW all_fixes AS
    SELECT device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed,
           load_t, received_ms
    FROM fixes
    UNION ALL
    SELECT e.device_id, e.ts_ms, e.lat, e.lon, e.speed_kmh, e.heading, e.acc, e.tipper_up,
           e.cover_closed, e.load_t, e.received_ms
    FROM evidence_fixes e
    WHERE NOT EXISTS (SELECT 1 FROM fixes f WHERE f.device_id = e.device_id AND f.ts_ms = e.ts_ms);
