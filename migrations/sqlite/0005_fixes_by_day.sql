-- Reads of fixes go through `all_fixes`. On SQLite it is `fixes` itself:
-- the table stays one table and retention deletes rows. (On PostgreSQL
-- `fixes` is partitioned by day and the view adds the evidence kept from
-- dropped partitions; see migrations/postgres/0005_fixes_by_day.sql.)
CREATE VIEW all_fixes AS
    SELECT device_id, ts_ms, lat, lon, speed_kmh, heading, acc, tipper_up, cover_closed,
           load_t, received_ms
    FROM fixes;

-- A case's codes and the 一超四罚 count look violations up by case, as on PostgreSQL.
CREATE INDEX violations_case ON violations(case_id);
