-- Self-service kiosks (package kiosk). Each kiosk is registered in the
-- console with the ticket printer next to it, then paired once with a
-- one-time code typed on the device; the device keeps a long random token in
-- a cookie, of which only the SHA-256 is stored. Kiosks are appliance-local:
-- they do not replicate to the cloud.

-- +goose Up
CREATE TABLE kiosks (
    id                 VARCHAR(36)  NOT NULL PRIMARY KEY,
    name               VARCHAR(100) NOT NULL,
    location           VARCHAR(200) NOT NULL DEFAULT '',
    printer_id         VARCHAR(36)  NULL,               -- the printers record of its ticket printer
    idle_seconds       INTEGER      NOT NULL DEFAULT 60, -- back to the start screen after this long untouched
    device_token_hash  VARCHAR(64)  NOT NULL DEFAULT '', -- hex SHA-256 of the paired device's token
    pairing_code_hash  VARCHAR(64)  NOT NULL DEFAULT '', -- hex SHA-256 of id:code of the pending pairing code
    pairing_expires_at VARCHAR(27)  NULL,
    paired_at          VARCHAR(27)  NULL,
    last_seen_at       VARCHAR(27)  NULL,
    enabled            INTEGER      NOT NULL DEFAULT 1,
    version            BIGINT       NOT NULL DEFAULT 1,
    created_at         VARCHAR(27)  NOT NULL,
    updated_at         VARCHAR(27)  NOT NULL,
    deleted_at         VARCHAR(27)  NULL
);
CREATE INDEX kiosks_device ON kiosks (device_token_hash);

-- +goose Down
DROP TABLE kiosks;
