-- Sync between the appliance and the cloud (package sync).
-- sync_outbox holds changes committed locally and not yet acknowledged by the
-- other side; sync_inbox remembers every change applied here, forever, so a
-- redelivered change is never applied twice.

-- +goose Up
CREATE TABLE sync_outbox (
    seq        BIGINT       NOT NULL PRIMARY KEY,
    change_id  VARCHAR(36)  NOT NULL,
    hospital   VARCHAR(36)  NOT NULL,
    payload    MEDIUMTEXT   NOT NULL,
    created_at VARCHAR(27)  NOT NULL
);
CREATE INDEX sync_outbox_hospital ON sync_outbox (hospital, seq);

CREATE TABLE sync_inbox (
    change_id   VARCHAR(36) NOT NULL PRIMARY KEY,
    hospital    VARCHAR(36) NOT NULL,
    origin      VARCHAR(64) NOT NULL,
    origin_seq  BIGINT      NOT NULL,
    committed_at VARCHAR(27) NOT NULL,
    applied_at  VARCHAR(27) NOT NULL
);
CREATE INDEX sync_inbox_applied ON sync_inbox (applied_at);

-- Counters and the clock floor: name -> value.
CREATE TABLE sync_state (
    name  VARCHAR(64)  NOT NULL PRIMARY KEY,
    value VARCHAR(200) NOT NULL
);
INSERT INTO sync_state (name, value) VALUES ('outbox_seq', '0');
INSERT INTO sync_state (name, value) VALUES ('hlc', '0000000000000000');

-- Per-field clocks of entities both sides write (last writer wins per field).
CREATE TABLE sync_field_stamps (
    entity    VARCHAR(64) NOT NULL,
    record_id VARCHAR(36) NOT NULL,
    field     VARCHAR(64) NOT NULL,
    hlc       VARCHAR(16) NOT NULL,
    origin    VARCHAR(64) NOT NULL,
    PRIMARY KEY (entity, record_id, field)
);

-- Values lost to a concurrent edit of the other side, for the console.
CREATE TABLE sync_conflicts (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    at           VARCHAR(27)  NOT NULL,
    hospital     VARCHAR(36)  NOT NULL,
    entity       VARCHAR(64)  NOT NULL,
    record_id    VARCHAR(36)  NOT NULL,
    field        VARCHAR(64)  NOT NULL,
    winner_value TEXT         NULL,
    winner_hlc   VARCHAR(16)  NOT NULL,
    winner_origin VARCHAR(64) NOT NULL,
    loser_value  TEXT         NULL,
    loser_hlc    VARCHAR(16)  NOT NULL,
    loser_origin VARCHAR(64)  NOT NULL
);
CREATE INDEX sync_conflicts_at ON sync_conflicts (at);

-- Messages refused by apply (malformed, another hospital's, unknown entity):
-- kept for IT, counted on the status page, and acknowledged so they do not
-- block the stream.
CREATE TABLE sync_rejects (
    id       VARCHAR(36)  NOT NULL PRIMARY KEY,
    at       VARCHAR(27)  NOT NULL,
    hospital VARCHAR(36)  NOT NULL,
    reason   VARCHAR(500) NOT NULL,
    payload  MEDIUMTEXT   NULL
);
CREATE INDEX sync_rejects_at ON sync_rejects (at);

-- Replicated master data carries its hospital, so the cloud can hold many
-- hospitals' replicas and refuse a change that claims another hospital's row.
ALTER TABLE institutions ADD COLUMN hospital_id VARCHAR(36) NOT NULL DEFAULT '';
ALTER TABLE departments ADD COLUMN hospital_id VARCHAR(36) NOT NULL DEFAULT '';
ALTER TABLE staff ADD COLUMN hospital_id VARCHAR(36) NOT NULL DEFAULT '';
CREATE INDEX institutions_hospital ON institutions (hospital_id);
CREATE INDEX departments_hospital ON departments (hospital_id);
CREATE INDEX staff_hospital ON staff (hospital_id);

-- +goose Down
-- The hospital_id columns stay: dropping a column is not portable SQL.
DROP TABLE sync_rejects;
DROP TABLE sync_conflicts;
DROP TABLE sync_field_stamps;
DROP TABLE sync_state;
DROP TABLE sync_inbox;
DROP TABLE sync_outbox;
