-- Three-way reconciliation (issue 7): runs are per hospital and replicate,
-- with their mismatches, to that hospital's appliance (cloud-owned), where
-- the console's 对账管理 reads them; the insurance run carries the centre's
-- 3201 totals check. The tables of 00019 held only channel runs of the
-- cloud, recomputed by any re-run of the day, so they are made anew rather
-- than altered (SQLite cannot change a unique index or add the sync columns
-- in place the way MySQL does).

-- +goose Up
DROP TABLE reconcile_items;
DROP TABLE reconcile_runs;

CREATE TABLE reconcile_runs (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',    -- '' for what no side could attribute (cloud only)
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
    stmt_status    VARCHAR(16)  NOT NULL DEFAULT '',    -- insurance 3201: balanced, unbalanced, unchecked; '' elsewhere
    stmt_detail    VARCHAR(500) NOT NULL DEFAULT '',
    last_error     VARCHAR(500) NOT NULL DEFAULT '',
    started_at     VARCHAR(27)  NOT NULL,
    finished_at    VARCHAR(27)  NULL,
    version        BIGINT       NOT NULL DEFAULT 1,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
-- A re-run of a day replaces the run: one row per hospital, day and side.
CREATE UNIQUE INDEX reconcile_runs_day ON reconcile_runs (hospital_id, day, source);

CREATE TABLE reconcile_items (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    run_id        VARCHAR(36)  NOT NULL,
    day           VARCHAR(10)  NOT NULL,
    source        VARCHAR(16)  NOT NULL,
    record_key    VARCHAR(64)  NOT NULL,                -- out_trade_no, out_refund_no, leg_key, payment or refund id
    record_kind   VARCHAR(16)  NOT NULL,                -- payment, refund, statement
    kind          VARCHAR(24)  NOT NULL,                -- missing_theirs, missing_ours, amount, status, other_day, refused, statement
    ours          BIGINT       NULL,                    -- fen; NULL when we have no record
    theirs        BIGINT       NULL,                    -- fen; NULL when they have no record
    ours_ref      VARCHAR(64)  NOT NULL DEFAULT '',     -- our payment or refund id
    ours_status   VARCHAR(24)  NOT NULL DEFAULT '',
    theirs_ref    VARCHAR(64)  NOT NULL DEFAULT '',     -- their transaction / refund / settlement / message id
    theirs_status VARCHAR(24)  NOT NULL DEFAULT '',
    detail        VARCHAR(500) NOT NULL DEFAULT '',     -- the parts (fund, account) or the centre's answer
    suggestion    VARCHAR(200) NOT NULL DEFAULT '',
    resolved_by   VARCHAR(64)  NOT NULL DEFAULT '',
    resolved_at   VARCHAR(27)  NULL,
    note          VARCHAR(500) NOT NULL DEFAULT '',
    created_at    VARCHAR(27)  NOT NULL,
    version       BIGINT       NOT NULL DEFAULT 1,
    updated_at    VARCHAR(27)  NOT NULL,
    deleted_at    VARCHAR(27)  NULL                     -- gone in a later re-run of the day
);
-- A re-run updates the item of the same record (keeping its resolution while
-- the mismatch persists) and marks vanished ones deleted, so the replica
-- follows.
CREATE UNIQUE INDEX reconcile_items_key ON reconcile_items (run_id, record_kind, record_key);
CREATE INDEX reconcile_items_open ON reconcile_items (hospital_id, day, resolved_at);

-- +goose Down
DROP TABLE reconcile_items;
DROP TABLE reconcile_runs;
CREATE TABLE reconcile_runs (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    day            VARCHAR(10)  NOT NULL,
    source         VARCHAR(16)  NOT NULL,
    status         VARCHAR(16)  NOT NULL,
    ours_count     BIGINT       NOT NULL DEFAULT 0,
    ours_pay       BIGINT       NOT NULL DEFAULT 0,
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
CREATE UNIQUE INDEX reconcile_runs_day ON reconcile_runs (day, source);
CREATE TABLE reconcile_items (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    run_id       VARCHAR(36)  NOT NULL,
    day          VARCHAR(10)  NOT NULL,
    source       VARCHAR(16)  NOT NULL,
    record_key   VARCHAR(64)  NOT NULL,
    record_kind  VARCHAR(16)  NOT NULL,
    kind         VARCHAR(24)  NOT NULL,
    ours         BIGINT       NULL,
    theirs       BIGINT       NULL,
    ours_ref     VARCHAR(64)  NOT NULL DEFAULT '',
    ours_status  VARCHAR(24)  NOT NULL DEFAULT '',
    theirs_ref   VARCHAR(64)  NOT NULL DEFAULT '',
    suggestion   VARCHAR(200) NOT NULL DEFAULT '',
    resolved_by  VARCHAR(64)  NOT NULL DEFAULT '',
    resolved_at  VARCHAR(27)  NULL,
    note         VARCHAR(500) NOT NULL DEFAULT '',
    created_at   VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX reconcile_items_key ON reconcile_items (run_id, record_kind, record_key);
CREATE INDEX reconcile_items_open ON reconcile_items (day, resolved_at);
