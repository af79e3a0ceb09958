-- Daily reconciliation (issue 7): one run per day and external side (the
-- payment channel's bill now; insurance settlements and HIS fees later) and
-- the mismatches it found, each with a suggested action and who resolved it.
-- Cloud-only tables: the appliance does not reconcile.

-- +goose Up
CREATE TABLE reconcile_runs (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    day            VARCHAR(10)  NOT NULL,               -- 2006-01-02, Asia/Shanghai
    source         VARCHAR(16)  NOT NULL,               -- channel, insurance, his
    status         VARCHAR(16)  NOT NULL,               -- running, done, failed
    ours_count     BIGINT       NOT NULL DEFAULT 0,     -- our records that moved money that day
    ours_pay       BIGINT       NOT NULL DEFAULT 0,     -- fen
    ours_refund    BIGINT       NOT NULL DEFAULT 0,
    theirs_count   BIGINT       NOT NULL DEFAULT 0,
    theirs_pay     BIGINT       NOT NULL DEFAULT 0,
    theirs_refund  BIGINT       NOT NULL DEFAULT 0,
    matched        BIGINT       NOT NULL DEFAULT 0,
    mismatches     BIGINT       NOT NULL DEFAULT 0,
    last_error     VARCHAR(500) NOT NULL DEFAULT '',
    started_at     VARCHAR(27)  NOT NULL,
    finished_at    VARCHAR(27)  NULL,
    version        BIGINT       NOT NULL DEFAULT 1
);
-- A re-run of a day replaces the run: one row per day and side.
CREATE UNIQUE INDEX reconcile_runs_day ON reconcile_runs (day, source);

CREATE TABLE reconcile_items (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    run_id       VARCHAR(36)  NOT NULL,
    day          VARCHAR(10)  NOT NULL,
    source       VARCHAR(16)  NOT NULL,
    record_key   VARCHAR(64)  NOT NULL,                 -- out_trade_no, out_refund_no, setl_id…
    record_kind  VARCHAR(16)  NOT NULL,                 -- payment, refund
    kind         VARCHAR(24)  NOT NULL,                 -- missing_theirs, missing_ours, amount, status, other_day
    ours         BIGINT       NULL,                     -- fen; NULL when we have no record
    theirs       BIGINT       NULL,                     -- fen; NULL when they have no record
    ours_ref     VARCHAR(64)  NOT NULL DEFAULT '',      -- our payment or refund id
    ours_status  VARCHAR(24)  NOT NULL DEFAULT '',
    theirs_ref   VARCHAR(64)  NOT NULL DEFAULT '',      -- their transaction / refund / settlement id
    suggestion   VARCHAR(200) NOT NULL DEFAULT '',
    resolved_by  VARCHAR(64)  NOT NULL DEFAULT '',
    resolved_at  VARCHAR(27)  NULL,
    note         VARCHAR(500) NOT NULL DEFAULT '',
    created_at   VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX reconcile_items_key ON reconcile_items (run_id, record_kind, record_key);
CREATE INDEX reconcile_items_open ON reconcile_items (day, resolved_at);

-- Our side of a day is read by the time money moved.
CREATE INDEX payments_paid ON payments (paid_at);
CREATE INDEX refunds_done ON refunds (done_at);
CREATE INDEX refunds_created ON refunds (created_at);

-- +goose Down
-- payments_paid, refunds_done and refunds_created stay: DROP INDEX is spelt differently by
-- SQLite and MySQL (as in 00005), and they go with their tables in 00017.
DROP TABLE reconcile_items;
DROP TABLE reconcile_runs;
