-- The foundation schema: master data (institutions, departments, staff), console
-- users and sessions, and the hash-chained audit log.
-- Portable between SQLite and MySQL/MariaDB: VARCHAR keys, INTEGER booleans,
-- times as fixed-width UTC text (ihos.TimeFormat), no engine-specific options.
-- Every replicated row carries version (optimistic concurrency, and the entity
-- version sync compares) and deleted_at (a tombstone that replicates, where a hard
-- delete would not).

-- +goose Up
CREATE TABLE institutions (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    code         VARCHAR(32)  NOT NULL,
    name         VARCHAR(100) NOT NULL,
    short_name   VARCHAR(50)  NOT NULL DEFAULT '',
    parent_id    VARCHAR(36)  NULL,
    grade        VARCHAR(16)  NOT NULL DEFAULT '',
    license_no   VARCHAR(64)  NOT NULL DEFAULT '',
    address      VARCHAR(200) NOT NULL DEFAULT '',
    phone        VARCHAR(32)  NOT NULL DEFAULT '',
    intro        TEXT         NULL,
    enabled      INTEGER      NOT NULL DEFAULT 1,
    version      BIGINT       NOT NULL DEFAULT 1,
    created_at   VARCHAR(27)  NOT NULL,
    updated_at   VARCHAR(27)  NOT NULL,
    deleted_at   VARCHAR(27)  NULL
);
CREATE INDEX institutions_code ON institutions (code);

CREATE TABLE departments (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    institution_id VARCHAR(36)  NOT NULL,
    parent_id      VARCHAR(36)  NULL,
    code           VARCHAR(32)  NOT NULL,
    name           VARCHAR(100) NOT NULL,
    category       VARCHAR(16)  NOT NULL DEFAULT '',
    location       VARCHAR(200) NOT NULL DEFAULT '',
    phone          VARCHAR(32)  NOT NULL DEFAULT '',
    online         INTEGER      NOT NULL DEFAULT 0,
    sort_order     INTEGER      NOT NULL DEFAULT 0,
    intro          TEXT         NULL,
    enabled        INTEGER      NOT NULL DEFAULT 1,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
CREATE INDEX departments_institution ON departments (institution_id, sort_order);
CREATE INDEX departments_code ON departments (code);

CREATE TABLE staff (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    institution_id  VARCHAR(36)  NOT NULL,
    department_id   VARCHAR(36)  NOT NULL,
    job_no          VARCHAR(32)  NOT NULL,
    name            VARCHAR(50)  NOT NULL,
    gender          VARCHAR(8)   NOT NULL DEFAULT '',
    kind            VARCHAR(16)  NOT NULL,
    title           VARCHAR(16)  NOT NULL DEFAULT '',
    license_no      VARCHAR(64)  NOT NULL DEFAULT '',
    practice_since  INTEGER      NOT NULL DEFAULT 0,
    phone           VARCHAR(200) NOT NULL DEFAULT '',
    phone_bidx      VARCHAR(64)  NOT NULL DEFAULT '',
    id_number       VARCHAR(200) NOT NULL DEFAULT '',
    id_number_bidx  VARCHAR(64)  NOT NULL DEFAULT '',
    specialty       VARCHAR(500) NOT NULL DEFAULT '',
    online          INTEGER      NOT NULL DEFAULT 0,
    intro           TEXT         NULL,
    enabled         INTEGER      NOT NULL DEFAULT 1,
    version         BIGINT       NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL
);
CREATE INDEX staff_department ON staff (department_id, job_no);
CREATE INDEX staff_institution ON staff (institution_id, job_no);
CREATE INDEX staff_kind ON staff (kind, job_no);
CREATE INDEX staff_job_no ON staff (job_no);
CREATE INDEX staff_phone_bidx ON staff (phone_bidx);
CREATE INDEX staff_id_number_bidx ON staff (id_number_bidx);

CREATE TABLE console_users (
    id                  VARCHAR(36)  NOT NULL PRIMARY KEY,
    username            VARCHAR(64)  NOT NULL,
    display_name        VARCHAR(50)  NOT NULL,
    password_hash       VARCHAR(200) NOT NULL,
    role                VARCHAR(32)  NOT NULL,
    department_id       VARCHAR(36)  NULL,
    failed_logins       INTEGER      NOT NULL DEFAULT 0,
    locked_until        VARCHAR(27)  NULL,
    last_login_at       VARCHAR(27)  NULL,
    password_changed_at VARCHAR(27)  NULL,
    enabled             INTEGER      NOT NULL DEFAULT 1,
    version             BIGINT       NOT NULL DEFAULT 1,
    created_at          VARCHAR(27)  NOT NULL,
    updated_at          VARCHAR(27)  NOT NULL,
    deleted_at          VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX console_users_username ON console_users (username);

-- Sessions are keyed by the SHA-256 of the token, so a copy of the database
-- does not hand out live sessions.
CREATE TABLE sessions (
    token_hash   VARCHAR(64)  NOT NULL PRIMARY KEY,
    user_id      VARCHAR(36)  NOT NULL,
    csrf_token   VARCHAR(64)  NOT NULL,
    ip           VARCHAR(64)  NOT NULL DEFAULT '',
    user_agent   VARCHAR(200) NOT NULL DEFAULT '',
    created_at   VARCHAR(27)  NOT NULL,
    expires_at   VARCHAR(27)  NOT NULL,
    last_seen_at VARCHAR(27)  NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- The audit log is append-only and hash-chained with SM3: each entry's hash
-- covers its content and the previous entry's hash, so an edited or removed entry
-- breaks the chain. audit_head holds the chain's tip and serialises appends.
CREATE TABLE audit_log (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    seq         BIGINT       NOT NULL,
    at          VARCHAR(27)  NOT NULL,
    actor_id    VARCHAR(36)  NOT NULL DEFAULT '',
    actor_name  VARCHAR(64)  NOT NULL DEFAULT '',
    action      VARCHAR(32)  NOT NULL,
    resource    VARCHAR(64)  NOT NULL DEFAULT '',
    record_id   VARCHAR(36)  NOT NULL DEFAULT '',
    summary     VARCHAR(500) NOT NULL DEFAULT '',
    before_json TEXT         NULL,
    after_json  TEXT         NULL,
    ip          VARCHAR(64)  NOT NULL DEFAULT '',
    request_id  VARCHAR(64)  NOT NULL DEFAULT '',
    prev_hash   VARCHAR(64)  NOT NULL,
    hash        VARCHAR(64)  NOT NULL
);
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE INDEX audit_log_record ON audit_log (resource, record_id, seq);
CREATE INDEX audit_log_actor ON audit_log (actor_id, seq);

CREATE TABLE audit_head (
    id   INTEGER     NOT NULL PRIMARY KEY,
    seq  BIGINT      NOT NULL,
    hash VARCHAR(64) NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- +goose Down
DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE sessions;
DROP TABLE console_users;
DROP TABLE staff;
DROP TABLE departments;
DROP TABLE institutions;
