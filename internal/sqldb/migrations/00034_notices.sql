-- The message center (issue 8, package notices): notices to patient accounts
-- and doctors about their bookings, visits, prescriptions, payments,
-- e-invoices, records and reports, each with its read state. All three tables
-- stay in the cloud.
--
-- notice_feed is the worker's queue: the cloud's change feed
-- (sync.Replica.Follow) adds the rows that may make a notice in the same
-- transaction that promotes a local change to the outbox or applies a
-- hospital's change, and the worker turns them into notices and deletes them
-- in one transaction. So every change is seen exactly once, across restarts;
-- the unique dedupe_key per recipient is the second guard.
--
-- seq orders the notices: the worker takes the next number from notice_state
-- for every notice it creates or updates (a coalesced "新消息" notice), under
-- that row's lock, so a reader that has seen seq n has seen everything before.

-- +goose Up
CREATE TABLE notices (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    seq             BIGINT       NOT NULL,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    recipient_kind  VARCHAR(8)   NOT NULL,              -- patient (an account), staff (a doctor)
    recipient_id    VARCHAR(36)  NOT NULL,
    kind            VARCHAR(24)  NOT NULL,
    title           VARCHAR(100) NOT NULL,
    body            VARCHAR(500) NOT NULL DEFAULT '',
    link            VARCHAR(300) NOT NULL DEFAULT '',
    subject_id      VARCHAR(36)  NOT NULL DEFAULT '',   -- the visit, payment, prescription… it is about
    dedupe_key      VARCHAR(120) NOT NULL,
    coalesced       INTEGER      NOT NULL DEFAULT 1,    -- how many messages a "新消息" notice stands for
    read_at         VARCHAR(27)  NULL,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX notices_key ON notices (recipient_kind, recipient_id, dedupe_key);
CREATE UNIQUE INDEX notices_seq ON notices (seq);
CREATE INDEX notices_recipient ON notices (recipient_kind, recipient_id, seq);
CREATE INDEX notices_unread ON notices (recipient_kind, recipient_id, read_at);

CREATE TABLE notice_feed (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,      -- UUIDv7: the order to handle them in
    change_id   VARCHAR(36)  NOT NULL,
    hospital_id VARCHAR(36)  NOT NULL DEFAULT '',
    entity      VARCHAR(64)  NOT NULL,
    row_id      VARCHAR(36)  NOT NULL,
    vals        TEXT         NOT NULL,                  -- JSON: the row's columns the worker reads
    created_at  VARCHAR(27)  NOT NULL
);

CREATE TABLE notice_state (
    name  VARCHAR(16) NOT NULL PRIMARY KEY,
    value BIGINT      NOT NULL
);
INSERT INTO notice_state (name, value) VALUES ('seq', 0);

-- +goose Down
DROP TABLE notice_state;
DROP TABLE notice_feed;
DROP TABLE notices;
