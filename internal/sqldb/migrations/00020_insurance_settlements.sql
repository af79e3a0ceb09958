-- Insurance legs (issue 7, docs/decisions/0012): every pre-settlement
-- (2206 / 6201, kind presettle, leg_key = the quote id), settlement (2207 /
-- 6202, kind settle, leg_key = the payment's insurance key) and insurance
-- refund (2208 / 6203, kind refund, leg_key = the refund's out_refund_no) the
-- appliance makes with the insurance centre. A row is written before the
-- centre is called, with the msgid / orgBizSer of the call, so an unknown
-- outcome is asked again under the same id. Appliance-owned, replicated to the
-- cloud for reconciliation; state (the flow's JSON, with the patient's
-- e-voucher token and person number) is local to the appliance.

-- +goose Up
CREATE TABLE insurance_settlements (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id  VARCHAR(36)  NOT NULL DEFAULT '',
    kind         VARCHAR(12)  NOT NULL,              -- presettle, settle, refund
    leg_key      VARCHAR(64)  NOT NULL,              -- quote id, insurance key or out_refund_no
    quote_id     VARCHAR(36)  NOT NULL DEFAULT '',   -- the pre-settlement a settle row settles
    settle_key   VARCHAR(64)  NOT NULL DEFAULT '',   -- the settlement a refund row refunds
    payment_id   VARCHAR(36)  NOT NULL DEFAULT '',
    patient_id   VARCHAR(36)  NOT NULL DEFAULT '',
    channel      VARCHAR(24)  NOT NULL,              -- insurance_mobile, insurance_site
    status       VARCHAR(16)  NOT NULL,              -- quoted, pending, settled, failed, refunded, reversed
    total        BIGINT       NOT NULL,              -- fen; a refund row holds the amounts refunded (positive)
    fund_pay     BIGINT       NOT NULL DEFAULT 0,
    account_pay  BIGINT       NOT NULL DEFAULT 0,
    cash_pay     BIGINT       NOT NULL DEFAULT 0,
    setl_id      VARCHAR(64)  NOT NULL DEFAULT '',   -- setl_id (site) or payOrdId (mobile) at the centre
    msgid        VARCHAR(64)  NOT NULL DEFAULT '',   -- the 2207/2208 msgid, 6202 orgBizSer or 6203 appRefdSn
    insutype     VARCHAR(6)   NOT NULL DEFAULT '',
    day          VARCHAR(10)  NOT NULL DEFAULT '',   -- Asia/Shanghai day the money moved at the centre
    attempts     INTEGER      NOT NULL DEFAULT 0,
    last_error   VARCHAR(500) NOT NULL DEFAULT '',
    state        MEDIUMTEXT   NULL,                  -- the flow's state (JSON); local to the appliance (NULL in the cloud)
    expires_at   VARCHAR(27)  NULL,
    settled_at   VARCHAR(27)  NULL,
    version      BIGINT       NOT NULL DEFAULT 1,
    created_at   VARCHAR(27)  NOT NULL,
    updated_at   VARCHAR(27)  NOT NULL,
    deleted_at   VARCHAR(27)  NULL,
    CONSTRAINT insurance_settlements_split CHECK (fund_pay + account_pay + cash_pay = total),
    CONSTRAINT insurance_settlements_parts CHECK (fund_pay >= 0 AND account_pay >= 0 AND cash_pay >= 0)
);
CREATE UNIQUE INDEX insurance_settlements_key ON insurance_settlements (leg_key);
CREATE INDEX insurance_settlements_setl ON insurance_settlements (setl_id);
CREATE INDEX insurance_settlements_day ON insurance_settlements (day, kind, status);
CREATE INDEX insurance_settlements_payment ON insurance_settlements (payment_id);
CREATE INDEX insurance_settlements_quote ON insurance_settlements (quote_id);
CREATE INDEX insurance_settlements_hospital ON insurance_settlements (hospital_id, created_at);

-- +goose Down
DROP TABLE insurance_settlements;
