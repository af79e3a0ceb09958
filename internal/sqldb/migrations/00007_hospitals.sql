-- The hospitals a cloud serves. A hospital is added with a one-time enrollment
-- code (only its SHA-256 is kept); the appliance trades the code for a client
-- certificate signed by the cloud's CA, which binds its sync link to the
-- hospital's own NATS account.

-- +goose Up
CREATE TABLE hospitals (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    name            VARCHAR(100) NOT NULL,
    code_hash       VARCHAR(64)  NOT NULL DEFAULT '',
    code_expires_at VARCHAR(27)  NULL,
    enrolled_at     VARCHAR(27)  NULL,
    cert_serial     VARCHAR(64)  NOT NULL DEFAULT '',
    enabled         INTEGER      NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL
);
CREATE INDEX hospitals_code ON hospitals (code_hash);

-- +goose Down
DROP TABLE hospitals;
