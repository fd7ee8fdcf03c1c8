-- JT/T 808 terminals: the authentication code each got at registration,
-- stored hashed (SHA-256, hex); a new registration replaces it.
CREATE TABLE jt808_terminals (
    device_id      TEXT PRIMARY KEY,
    auth_hash      TEXT NOT NULL,
    plate          TEXT NOT NULL,
    maker          TEXT NOT NULL,
    model          TEXT NOT NULL,
    terminal_id    TEXT NOT NULL,
    registered_ms  INTEGER NOT NULL
);
