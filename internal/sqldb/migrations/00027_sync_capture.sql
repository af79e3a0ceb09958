-- Sync capture staging (package sync, Replica.capture and Replica.promote).
-- A replicated write inserts its change here, in its own transaction, and
-- touches no shared row: on MariaDB the outbox sequence and clock rows of
-- sync_state serialised every replicated write of the cloud. The relay moves
-- staged changes into sync_outbox in a short transaction of its own, ordered
-- by (hlc, change_id), and numbers them there. Keys are change ids, so any
-- number of processes sharing one database stage without meeting.

-- +goose Up
CREATE TABLE sync_capture (
    change_id  VARCHAR(36)  NOT NULL PRIMARY KEY,
    hlc        VARCHAR(16)  NOT NULL,
    hospital   VARCHAR(36)  NOT NULL,
    payload    MEDIUMTEXT   NOT NULL,
    created_at VARCHAR(27)  NOT NULL
);
CREATE INDEX sync_capture_hlc ON sync_capture (hlc, change_id);

-- +goose Down
DROP TABLE sync_capture;
