-- Staff logins to the doctor/pharmacist app on the cloud (issue 8). The
-- hospital grants app access on the console: staff_app_logins is
-- appliance-owned and replicated to the cloud, carrying the bcrypt hash of
-- the initial password (never the password) and the phone the doctor logs in
-- with. Everything else here is cloud-local: lockout state, a password the
-- doctor chose (it replaces the issued one until the hospital issues a new
-- one), sessions, and the daily real-name check (SMS codes and the days
-- confirmed).

-- +goose Up
CREATE TABLE staff_app_logins (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    staff_id        VARCHAR(36)  NOT NULL,
    phone           VARCHAR(20)  NOT NULL DEFAULT '',   -- the login name
    enabled         INTEGER      NOT NULL DEFAULT 1,
    password_hash   VARCHAR(200) NOT NULL,
    must_change     INTEGER      NOT NULL DEFAULT 1,
    issued_at       VARCHAR(27)  NOT NULL,              -- when this password was issued
    version         BIGINT       NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX staff_app_logins_staff ON staff_app_logins (staff_id);
CREATE INDEX staff_app_logins_phone ON staff_app_logins (phone);

CREATE TABLE staff_app_state (
    staff_id        VARCHAR(36)  NOT NULL PRIMARY KEY,
    failed_attempts INTEGER      NOT NULL DEFAULT 0,
    locked_until    VARCHAR(27)  NULL,
    password_hash   VARCHAR(200) NOT NULL DEFAULT '',   -- chosen by the doctor; '' = the issued one
    replaces_hash   VARCHAR(200) NOT NULL DEFAULT '',   -- the issued hash it replaces
    updated_at      VARCHAR(27)  NOT NULL
);

CREATE TABLE staff_app_sessions (
    token_hash      VARCHAR(64)  NOT NULL PRIMARY KEY,
    staff_id        VARCHAR(36)  NOT NULL,
    csrf_token      VARCHAR(64)  NOT NULL,
    ip              VARCHAR(64)  NOT NULL DEFAULT '',
    user_agent      VARCHAR(200) NOT NULL DEFAULT '',
    created_at      VARCHAR(27)  NOT NULL,
    expires_at      VARCHAR(27)  NOT NULL,
    last_seen_at    VARCHAR(27)  NOT NULL
);
CREATE INDEX staff_app_sessions_staff ON staff_app_sessions (staff_id);

CREATE TABLE staff_realname_codes (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    staff_id        VARCHAR(36)  NOT NULL,
    code_hash       VARCHAR(64)  NOT NULL,
    attempts        INTEGER      NOT NULL DEFAULT 0,
    created_at      VARCHAR(27)  NOT NULL,
    expires_at      VARCHAR(27)  NOT NULL,
    used_at         VARCHAR(27)  NULL
);
CREATE INDEX staff_realname_codes_staff ON staff_realname_codes (staff_id, created_at);

CREATE TABLE staff_realname_checks (
    staff_id        VARCHAR(36)  NOT NULL,
    day             VARCHAR(10)  NOT NULL,              -- Asia/Shanghai date
    verified_at     VARCHAR(27)  NOT NULL,
    PRIMARY KEY (staff_id, day)
);

-- +goose Down
DROP TABLE staff_realname_checks;
DROP TABLE staff_realname_codes;
DROP TABLE staff_app_sessions;
DROP TABLE staff_app_state;
DROP TABLE staff_app_logins;
