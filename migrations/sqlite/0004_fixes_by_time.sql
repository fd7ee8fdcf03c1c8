-- Warm-up after a restart and retention read fixes by time across devices.
CREATE INDEX fixes_ts ON fixes(ts_ms);
