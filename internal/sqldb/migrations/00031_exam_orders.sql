-- Exam and lab orders of an online visit (检查检验申请, issue 8): written by
-- the visit's attending doctor from the current HIS catalogue (his_catalog,
-- kinds EXAM and LAB), signed with their e-signature, then placed with the
-- HIS through the appliance (his PlaceOrder over the sync RPC); the fee then
-- appears as an unpaid HIS fee the patient pays with the bills (诊间支付).
-- Cloud-owned, replicated to the appliance. draft → signed (待发送: waiting
-- for the HIS) → sent. Nothing is deleted; every change is a row of
-- exam_order_events (append only) and an audit record.

-- +goose Up
CREATE TABLE exam_orders (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id      VARCHAR(36)  NOT NULL DEFAULT '',
    visit_id         VARCHAR(36)  NOT NULL,
    patient_id       VARCHAR(36)  NOT NULL,
    doctor_id        VARCHAR(36)  NOT NULL,
    department_id    VARCHAR(36)  NOT NULL DEFAULT '',
    kind             VARCHAR(8)   NOT NULL,               -- exam, lab
    status           VARCHAR(16)  NOT NULL,               -- draft, signed, sent
    items            TEXT         NOT NULL,               -- JSON array of priced lines
    total_fen        BIGINT       NOT NULL DEFAULT 0,
    note             VARCHAR(500) NOT NULL DEFAULT '',    -- clinical information for the exam / lab
    signed_doc       TEXT         NULL,
    doc_sm3          VARCHAR(64)  NOT NULL DEFAULT '',
    signature        TEXT         NULL,
    signed_at        VARCHAR(27)  NULL,
    his_orders       VARCHAR(2000) NOT NULL DEFAULT '',   -- comma-separated placer order numbers
    sent_at          VARCHAR(27)  NULL,
    send_error       VARCHAR(500) NOT NULL DEFAULT '',    -- the last failed attempt to place it
    version          BIGINT       NOT NULL DEFAULT 1,
    created_at       VARCHAR(27)  NOT NULL,
    updated_at       VARCHAR(27)  NOT NULL,
    deleted_at       VARCHAR(27)  NULL
);
CREATE INDEX exam_orders_visit ON exam_orders (visit_id, created_at);
CREATE INDEX exam_orders_status ON exam_orders (status, signed_at);

CREATE TABLE exam_order_events (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id      VARCHAR(36)  NOT NULL DEFAULT '',
    order_id         VARCHAR(36)  NOT NULL,
    from_status      VARCHAR(16)  NOT NULL DEFAULT '',
    to_status        VARCHAR(16)  NOT NULL,
    actor_id         VARCHAR(64)  NOT NULL DEFAULT '',
    reason           VARCHAR(500) NOT NULL DEFAULT '',
    at               VARCHAR(27)  NOT NULL,
    version          BIGINT       NOT NULL DEFAULT 1,
    updated_at       VARCHAR(27)  NOT NULL,
    deleted_at       VARCHAR(27)  NULL
);
CREATE INDEX exam_order_events_order ON exam_order_events (order_id, at);

-- +goose Down
DROP TABLE exam_order_events;
DROP TABLE exam_orders;
