-- Finance e-invoices (财政电子票据, issue 7): one row per payment, issued
-- through the finance platform by the appliance after the payment is paid and
-- written off (红冲) when it is fully refunded. Appliance-owned, replicated to
-- the cloud so the patient's phone can show the bill. bus_no is the platform's
-- idempotency key, stored before the first call.

-- +goose Up
CREATE TABLE invoices (
    id                      VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id             VARCHAR(36)  NOT NULL DEFAULT '',
    payment_id              VARCHAR(36)  NOT NULL,
    patient_id              VARCHAR(36)  NOT NULL DEFAULT '',
    business_type           VARCHAR(32)  NOT NULL DEFAULT '',
    bus_no                  VARCHAR(50)  NOT NULL,              -- the platform's idempotency key (the payment id)
    bill_batch_code         VARCHAR(50)  NOT NULL DEFAULT '',   -- 票据代码
    bill_no                 VARCHAR(50)  NOT NULL DEFAULT '',   -- 票据号码
    random                  VARCHAR(50)  NOT NULL DEFAULT '',   -- 校验码
    qr_code                 VARCHAR(1000) NOT NULL DEFAULT '',  -- text the QR code encodes (the check page)
    picture_url             VARCHAR(1000) NOT NULL DEFAULT '',
    picture_net_url         VARCHAR(1000) NOT NULL DEFAULT '',
    total                   BIGINT       NOT NULL,
    fund_pay                BIGINT       NOT NULL DEFAULT 0,
    account_pay             BIGINT       NOT NULL DEFAULT 0,
    cash_pay                BIGINT       NOT NULL DEFAULT 0,
    status                  VARCHAR(16)  NOT NULL,              -- pending, issued, written_off, failed, cancelled
    scarlet_bill_batch_code VARCHAR(50)  NOT NULL DEFAULT '',   -- 红票票据代码
    scarlet_bill_no         VARCHAR(50)  NOT NULL DEFAULT '',
    scarlet_random          VARCHAR(50)  NOT NULL DEFAULT '',
    issued_at               VARCHAR(27)  NULL,
    written_off_at          VARCHAR(27)  NULL,
    attempts                INTEGER      NOT NULL DEFAULT 0,
    last_error              VARCHAR(500) NOT NULL DEFAULT '',
    next_attempt_at         VARCHAR(27)  NULL,
    version                 BIGINT       NOT NULL DEFAULT 1,
    created_at              VARCHAR(27)  NOT NULL,
    updated_at              VARCHAR(27)  NOT NULL,
    deleted_at              VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX invoices_payment ON invoices (payment_id);
CREATE INDEX invoices_status_due ON invoices (status, next_attempt_at);
CREATE INDEX invoices_patient ON invoices (patient_id, created_at);
CREATE INDEX invoices_hospital ON invoices (hospital_id, created_at);

-- +goose Down
DROP TABLE invoices;
