-- 诊间支付 (issue 7): a patient pays fees the HIS holds for them.
-- bill_items are the HIS fees a payment pays, one row per fee, written by the
-- cloud when the payment is created (cloud-owned, replicated to the appliance,
-- which posts them to the HIS once the payment is paid). bill_postings record
-- each DFT^P03 the appliance queued for a payment: the charge, and one credit
-- per succeeded refund (appliance-owned, replicated to the cloud).

-- +goose Up
CREATE TABLE bill_items (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    payment_id      VARCHAR(36)  NOT NULL,
    his_patient_id  VARCHAR(64)  NOT NULL,
    fee_id          VARCHAR(64)  NOT NULL,              -- the HIS fee id (FT1-23 of the posting)
    visit_no        VARCHAR(64)  NOT NULL DEFAULT '',
    item_code       VARCHAR(64)  NOT NULL DEFAULT '',
    item_name       VARCHAR(200) NOT NULL DEFAULT '',
    quantity        VARCHAR(20)  NOT NULL DEFAULT '',
    amount_fen      BIGINT       NOT NULL,
    department_code VARCHAR(64)  NOT NULL DEFAULT '',
    doctor_code     VARCHAR(64)  NOT NULL DEFAULT '',
    -- hospital_id:fee_id while the item's payment may still take or holds
    -- the money, NULL once released: the unique index keeps one HIS fee in one
    -- such payment, whatever the selections. Local to the cloud.
    hold_key        VARCHAR(140) NULL,
    created_at      VARCHAR(27)  NOT NULL,
    version         BIGINT       NOT NULL DEFAULT 1,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL,
    CONSTRAINT bill_items_amount CHECK (amount_fen > 0)
);
CREATE INDEX bill_items_payment ON bill_items (payment_id, fee_id);
CREATE INDEX bill_items_fee ON bill_items (hospital_id, fee_id);
CREATE UNIQUE INDEX bill_items_hold ON bill_items (hold_key);

CREATE TABLE bill_postings (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    payment_id      VARCHAR(36)  NOT NULL,
    refund_id       VARCHAR(36)  NOT NULL DEFAULT '',   -- '' for the charge
    kind            VARCHAR(8)   NOT NULL,              -- charge, credit
    his_message_id  VARCHAR(36)  NOT NULL,              -- the his_outbox message (MSH-10)
    status          VARCHAR(16)  NOT NULL,              -- queued, accepted, refused
    status_text     VARCHAR(500) NOT NULL DEFAULT '',   -- the HIS's reason when refused
    amount_fen      BIGINT       NOT NULL,              -- negative for a credit
    day             VARCHAR(10)  NOT NULL,              -- Asia/Shanghai day the money moved
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL,
    version         BIGINT       NOT NULL DEFAULT 1,
    deleted_at      VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX bill_postings_once ON bill_postings (payment_id, kind, refund_id);
CREATE INDEX bill_postings_status ON bill_postings (status);
CREATE INDEX bill_postings_day ON bill_postings (day);

-- +goose Down
DROP TABLE bill_postings;
DROP TABLE bill_items;
