-- Payments (docs/decisions/0012): one row per payable order with its split
-- into insurance fund, personal account and cash in fen, every state change in
-- payment_events (append only), refunds, and the log of payment notifies.
-- payments, payment_events and refunds are cloud-owned and replicate to the
-- appliance; payment_notifies stays in the cloud.

-- +goose Up
CREATE TABLE payments (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    business_type  VARCHAR(32)  NOT NULL,
    business_id    VARCHAR(64)  NOT NULL,
    -- business_type:business_id while the payment is active or paid, NULL
    -- otherwise: the unique index lets a business have one such payment only.
    -- Local to the cloud (not replicated).
    business_key   VARCHAR(100) NULL,
    patient_id     VARCHAR(36)  NOT NULL DEFAULT '',
    doctor_id      VARCHAR(36)  NOT NULL DEFAULT '',
    department_id  VARCHAR(36)  NOT NULL DEFAULT '',
    channel        VARCHAR(24)  NOT NULL,               -- selfpay, insurance_mobile, insurance_site
    subject        VARCHAR(128) NOT NULL DEFAULT '',
    total          BIGINT       NOT NULL,
    fund_pay       BIGINT       NOT NULL DEFAULT 0,
    account_pay    BIGINT       NOT NULL DEFAULT 0,
    cash_pay       BIGINT       NOT NULL DEFAULT 0,
    refunded       BIGINT       NOT NULL DEFAULT 0,     -- refunds that succeeded
    refunding      BIGINT       NOT NULL DEFAULT 0,     -- refunds under way
    status         VARCHAR(24)  NOT NULL,
    out_trade_no   VARCHAR(32)  NOT NULL,               -- the channel's idempotency key
    insurance_key  VARCHAR(40)  NOT NULL DEFAULT '',    -- the insurance leg's idempotency key
    ins_status     VARCHAR(16)  NOT NULL DEFAULT 'none',
    cash_status    VARCHAR(16)  NOT NULL DEFAULT 'none',
    transaction_id VARCHAR(64)  NOT NULL DEFAULT '',
    needs_confirm  INTEGER      NOT NULL DEFAULT 0,
    ending         VARCHAR(24)  NOT NULL DEFAULT '',
    deadline       VARCHAR(27)  NOT NULL,
    next_query_at  VARCHAR(27)  NULL,
    attempts       INTEGER      NOT NULL DEFAULT 0,
    last_error     VARCHAR(500) NOT NULL DEFAULT '',
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    paid_at        VARCHAR(27)  NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL,
    CONSTRAINT payments_split CHECK (fund_pay + account_pay + cash_pay = total),
    CONSTRAINT payments_parts CHECK (fund_pay >= 0 AND account_pay >= 0 AND cash_pay >= 0),
    CONSTRAINT payments_refund_bound CHECK (refunded >= 0 AND refunding >= 0 AND refunded + refunding <= total)
);
CREATE UNIQUE INDEX payments_out_trade_no ON payments (out_trade_no);
CREATE UNIQUE INDEX payments_business_key ON payments (business_key);
CREATE INDEX payments_business ON payments (business_type, business_id);
CREATE INDEX payments_created ON payments (created_at);
CREATE INDEX payments_status_due ON payments (status, next_query_at);
CREATE INDEX payments_patient ON payments (patient_id, created_at);
CREATE INDEX payments_doctor ON payments (doctor_id, created_at);
CREATE INDEX payments_department ON payments (department_id, created_at);
CREATE INDEX payments_hospital ON payments (hospital_id, created_at);

CREATE TABLE payment_events (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id  VARCHAR(36)  NOT NULL DEFAULT '',
    payment_id   VARCHAR(36)  NOT NULL,
    refund_id    VARCHAR(36)  NOT NULL DEFAULT '',
    from_status  VARCHAR(24)  NOT NULL DEFAULT '',
    to_status    VARCHAR(24)  NOT NULL,
    reason       VARCHAR(64)  NOT NULL,
    detail       TEXT         NULL,                     -- JSON
    actor        VARCHAR(64)  NOT NULL DEFAULT '',
    at           VARCHAR(27)  NOT NULL,
    version      BIGINT       NOT NULL DEFAULT 1,
    deleted_at   VARCHAR(27)  NULL
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, at);

CREATE TABLE refunds (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    payment_id    VARCHAR(36)  NOT NULL,
    out_refund_no VARCHAR(64)  NOT NULL,                -- idempotency key of both legs
    request_key   VARCHAR(64)  NULL,                    -- the caller's key: a retried request returns this refund
    amount        BIGINT       NOT NULL,
    fund_part     BIGINT       NOT NULL DEFAULT 0,
    account_part  BIGINT       NOT NULL DEFAULT 0,
    cash_part     BIGINT       NOT NULL DEFAULT 0,
    status        VARCHAR(16)  NOT NULL,                -- pending, succeeded, failed
    ins_status    VARCHAR(16)  NOT NULL DEFAULT 'none',
    cash_status   VARCHAR(16)  NOT NULL DEFAULT 'none',
    reason        VARCHAR(200) NOT NULL DEFAULT '',
    attempts      INTEGER      NOT NULL DEFAULT 0,
    next_query_at VARCHAR(27)  NULL,
    last_error    VARCHAR(500) NOT NULL DEFAULT '',
    created_by    VARCHAR(64)  NOT NULL DEFAULT '',
    version       BIGINT       NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)  NOT NULL,
    done_at       VARCHAR(27)  NULL,
    updated_at    VARCHAR(27)  NOT NULL,
    deleted_at    VARCHAR(27)  NULL,
    CONSTRAINT refunds_split CHECK (fund_part + account_part + cash_part = amount AND amount > 0)
);
CREATE UNIQUE INDEX refunds_out_refund_no ON refunds (out_refund_no);
CREATE UNIQUE INDEX refunds_request_key ON refunds (payment_id, request_key);
CREATE INDEX refunds_payment ON refunds (payment_id, created_at);
CREATE INDEX refunds_status_due ON refunds (status, next_query_at);

-- Every notify received, applied or not. dedupe_key is set only for notifies
-- whose signature verified, so a forged one cannot take a real one's key.
CREATE TABLE payment_notifies (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    dedupe_key   VARCHAR(140) NULL,
    source       VARCHAR(16)  NOT NULL,                 -- channel, insurance
    notify_id    VARCHAR(128) NOT NULL DEFAULT '',      -- as claimed by the sender
    payment_id   VARCHAR(36)  NOT NULL DEFAULT '',
    order_no     VARCHAR(64)  NOT NULL DEFAULT '',      -- out_trade_no or insurance key named by the notify
    received_at  VARCHAR(27)  NOT NULL,
    raw_hash     VARCHAR(64)  NOT NULL DEFAULT '',      -- SHA-256 of the body
    outcome      VARCHAR(32)  NOT NULL,                 -- applied, duplicate, already, rejected_*
    detail       VARCHAR(500) NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX payment_notifies_dedupe ON payment_notifies (dedupe_key);
CREATE INDEX payment_notifies_received ON payment_notifies (received_at);
CREATE INDEX payment_notifies_payment ON payment_notifies (payment_id, received_at);

-- +goose Down
DROP TABLE payment_notifies;
DROP TABLE refunds;
DROP TABLE payment_events;
DROP TABLE payments;
