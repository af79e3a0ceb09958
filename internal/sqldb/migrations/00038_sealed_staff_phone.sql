-- Sealed columns that replicate (package sync, Entity.Sealed; decision 0014).
--
-- sync_transit_keys is the cloud's copy of each hospital's transit key,
-- sealed under the cloud's PII key; the appliance keeps its own hospital's in
-- its data dir. Personal data crosses sealed under it.
--
-- staff_app_logins.phone held the app login phone in clear text on both
-- sides. It is now sealed under each side's PII key (wider column) with a
-- blind index for the login lookup. The table is rebuilt because SQLite
-- cannot widen a column; the phones already there are sealed by the services
-- at start (staffauth.Service.SealPhones), which SQL cannot do.

-- +goose Up
CREATE TABLE sync_transit_keys (
    hospital_id VARCHAR(36)  NOT NULL PRIMARY KEY,
    key_sealed  VARCHAR(200) NOT NULL,
    created_at  VARCHAR(27)  NOT NULL
);

CREATE TABLE staff_app_logins_v2 (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    staff_id        VARCHAR(36)  NOT NULL,
    phone           VARCHAR(200) NOT NULL DEFAULT '',   -- sealed (pii), the login name
    phone_bidx      VARCHAR(64)  NOT NULL DEFAULT '',   -- its blind index, never replicated
    enabled         INTEGER      NOT NULL DEFAULT 1,
    password_hash   VARCHAR(200) NOT NULL,
    must_change     INTEGER      NOT NULL DEFAULT 1,
    issued_at       VARCHAR(27)  NOT NULL,
    version         BIGINT       NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL
);
INSERT INTO staff_app_logins_v2 (id, hospital_id, staff_id, phone, phone_bidx, enabled, password_hash, must_change, issued_at, version, created_at, updated_at, deleted_at)
    SELECT id, hospital_id, staff_id, phone, '', enabled, password_hash, must_change, issued_at, version, created_at, updated_at, deleted_at FROM staff_app_logins;
DROP TABLE staff_app_logins;
ALTER TABLE staff_app_logins_v2 RENAME TO staff_app_logins;
CREATE UNIQUE INDEX staff_app_logins_staff ON staff_app_logins (staff_id);
CREATE INDEX staff_app_logins_phone_bidx ON staff_app_logins (phone_bidx);

-- +goose Down
DROP TABLE sync_transit_keys;
