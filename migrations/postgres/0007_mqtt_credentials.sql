-- MQTT passwords of devices (POST /api/v1/vehicles/{plate}/mqtt-credentials):
-- one per device, replaced by a new call, stored as a Mosquitto `$7$`
-- PBKDF2-SHA512 hash with its own salt, never in clear.
CREATE TABLE mqtt_credentials (
    device_id   TEXT PRIMARY KEY,
    plate       TEXT NOT NULL,
    hash        TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);
