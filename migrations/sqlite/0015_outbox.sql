-- Outbound events (issue 19): each event is written in the transaction of
-- the change it reports, with its envelope serialised once (every retry
-- sends the same bytes under the same id), and fanned out into one
-- delivery row per configured webhook that wants its type: each webhook
-- progresses (and backs off) on its own, and "the first undelivered event
-- of this case for this webhook" is one index lookup.
CREATE TABLE outbox_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    order_key   TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    body        TEXT NOT NULL
);

CREATE TABLE outbox_deliveries (
    webhook       TEXT NOT NULL,
    event_seq     INTEGER NOT NULL REFERENCES outbox_events(seq),
    order_key     TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_ms       INTEGER NOT NULL,
    last_error    TEXT,
    delivered_ms  INTEGER,
    PRIMARY KEY (webhook, event_seq)
);
-- What is still to deliver, by webhook and case (per-case order).
CREATE INDEX outbox_undelivered ON outbox_deliveries(webhook, order_key, event_seq)
    WHERE delivered_ms IS NULL;
-- A delivered event's rows are pruned after `[outbox] keep_delivered_days`:
-- an event goes once no delivery row names it.
CREATE INDEX outbox_deliveries_event ON outbox_deliveries(event_seq);
