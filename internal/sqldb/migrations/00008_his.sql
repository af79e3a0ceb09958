-- The HIS link (docs/his-interface.md). The outbound queue, the message log
-- and the inbound dedup table live only on the appliance (it owns the link);
-- catalogue items, orders, results and patient links are appliance-owned and
-- replicate to the cloud, where doctors order from them and patients see them.

-- +goose Up
CREATE TABLE his_outbox (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY, -- the message control id (MSH-10)
    seq           BIGINT       NOT NULL,             -- queue order
    lane          VARCHAR(64)  NOT NULL,             -- messages of one lane (a patient) go in seq order
    event         VARCHAR(32)  NOT NULL,
    payload       TEXT         NOT NULL,             -- the ihos.HISMessage as JSON
    status        VARCHAR(16)  NOT NULL,             -- pending, sent, failed, cancelled
    attempts      INTEGER      NOT NULL DEFAULT 0,
    next_at       VARCHAR(27)  NOT NULL,
    last_error    VARCHAR(500) NOT NULL DEFAULT '',
    ack_code      VARCHAR(4)   NOT NULL DEFAULT '',
    ack_text      VARCHAR(500) NOT NULL DEFAULT '',
    created_by    VARCHAR(64)  NOT NULL DEFAULT '',
    created_at    VARCHAR(27)  NOT NULL,
    updated_at    VARCHAR(27)  NOT NULL,
    sent_at       VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX his_outbox_seq ON his_outbox (seq);
CREATE INDEX his_outbox_status ON his_outbox (status, seq);
CREATE INDEX his_outbox_lane ON his_outbox (lane, seq);

-- Every message in and out, kept for audit and searchable in the console.
CREATE TABLE his_messages (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    at            VARCHAR(27)  NOT NULL,
    direction     VARCHAR(3)   NOT NULL, -- out, in
    type          VARCHAR(24)  NOT NULL, -- ADT^A04, QBP^Q22, ORU^R01, …
    control_id    VARCHAR(64)  NOT NULL,
    lane          VARCHAR(64)  NOT NULL DEFAULT '',
    ack_code      VARCHAR(4)   NOT NULL DEFAULT '',
    ack_text      VARCHAR(500) NOT NULL DEFAULT '',
    error         VARCHAR(500) NOT NULL DEFAULT '',
    elapsed_ms    INTEGER      NOT NULL DEFAULT 0,
    request       TEXT         NOT NULL,
    response      TEXT         NOT NULL
);
CREATE INDEX his_messages_at ON his_messages (at);
CREATE INDEX his_messages_control ON his_messages (control_id);
CREATE INDEX his_messages_lane ON his_messages (lane, at);

-- Inbound messages already acted on: a resent result is acknowledged again
-- and stored once.
CREATE TABLE his_inbox (
    control_id    VARCHAR(64)  NOT NULL PRIMARY KEY,
    received_at   VARCHAR(27)  NOT NULL
);

CREATE TABLE his_catalog (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)   NOT NULL DEFAULT '',
    kind          VARCHAR(8)    NOT NULL, -- DRUG, EXAM, LAB
    code          VARCHAR(64)   NOT NULL,
    name          VARCHAR(200)  NOT NULL,
    spec          VARCHAR(200)  NOT NULL DEFAULT '',
    unit          VARCHAR(20)   NOT NULL DEFAULT '',
    price_fen     BIGINT        NOT NULL DEFAULT 0,
    stock         BIGINT        NULL,
    flags         VARCHAR(100)  NOT NULL DEFAULT '', -- comma-separated ihos.Flag* values
    category      VARCHAR(50)   NOT NULL DEFAULT '',
    specimen      VARCHAR(50)   NOT NULL DEFAULT '',
    enabled       INTEGER       NOT NULL DEFAULT 1,  -- active in the HIS
    version       BIGINT        NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL,
    deleted_at    VARCHAR(27)   NULL
);
CREATE UNIQUE INDEX his_catalog_code ON his_catalog (hospital_id, kind, code);
CREATE INDEX his_catalog_name ON his_catalog (kind, name);

-- Orders sent to the HIS (lab, exam, pharmacy) and their status.
CREATE TABLE his_orders (
    id              VARCHAR(36)   NOT NULL PRIMARY KEY, -- the placer order number
    hospital_id     VARCHAR(36)   NOT NULL DEFAULT '',
    kind            VARCHAR(8)    NOT NULL,             -- DRUG, EXAM, LAB
    patient_his_id  VARCHAR(64)   NOT NULL,
    visit_no        VARCHAR(64)   NOT NULL DEFAULT '',
    code            VARCHAR(64)   NOT NULL,
    name            VARCHAR(200)  NOT NULL,
    quantity        VARCHAR(20)   NOT NULL DEFAULT '',
    department_code VARCHAR(64)   NOT NULL DEFAULT '',
    doctor_code     VARCHAR(64)   NOT NULL DEFAULT '',
    message_id      VARCHAR(36)   NOT NULL,
    status          VARCHAR(16)   NOT NULL,              -- queued, accepted, refused, in_progress, completed, cancelled
    filler_order_no VARCHAR(64)   NOT NULL DEFAULT '',
    status_text     VARCHAR(500)  NOT NULL DEFAULT '',
    enabled         INTEGER       NOT NULL DEFAULT 1,
    version         BIGINT        NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)   NOT NULL,
    updated_at      VARCHAR(27)   NOT NULL,
    deleted_at      VARCHAR(27)   NULL
);
CREATE INDEX his_orders_patient ON his_orders (patient_his_id, created_at);
CREATE INDEX his_orders_message ON his_orders (message_id);

CREATE TABLE his_results (
    id              VARCHAR(36)   NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)   NOT NULL DEFAULT '',
    order_id        VARCHAR(36)   NOT NULL,             -- his_orders.id (placer order number)
    patient_his_id  VARCHAR(64)   NOT NULL,
    filler_order_no VARCHAR(64)   NOT NULL DEFAULT '',
    result_status   VARCHAR(2)    NOT NULL,              -- P, F, C
    service_code    VARCHAR(64)   NOT NULL DEFAULT '',
    service_name    VARCHAR(200)  NOT NULL DEFAULT '',
    reported_at     VARCHAR(27)   NOT NULL,
    observations    TEXT          NOT NULL,              -- JSON array of ihos.HISObservation
    enabled         INTEGER       NOT NULL DEFAULT 1,
    version         BIGINT        NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)   NOT NULL,
    updated_at      VARCHAR(27)   NOT NULL,
    deleted_at      VARCHAR(27)   NULL
);
CREATE UNIQUE INDEX his_results_order ON his_results (order_id);
CREATE INDEX his_results_patient ON his_results (patient_his_id, reported_at);

-- The master patient index: a platform patient account linked to the HIS
-- patient it is, with how sure the match is. Links below full confidence wait
-- for a person in the console.
CREATE TABLE patient_links (
    id              VARCHAR(36)   NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)   NOT NULL DEFAULT '',
    patient_id      VARCHAR(36)   NOT NULL,
    his_patient_id  VARCHAR(64)   NOT NULL,
    method          VARCHAR(16)   NOT NULL, -- id_number, insurance, his_id, manual
    confidence      INTEGER       NOT NULL, -- 0–100
    status          VARCHAR(16)   NOT NULL, -- linked, review, rejected
    note            VARCHAR(200)  NOT NULL DEFAULT '',
    enabled         INTEGER       NOT NULL DEFAULT 1,
    version         BIGINT        NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)   NOT NULL,
    updated_at      VARCHAR(27)   NOT NULL,
    deleted_at      VARCHAR(27)   NULL
);
CREATE UNIQUE INDEX patient_links_patient ON patient_links (patient_id);
CREATE INDEX patient_links_his ON patient_links (his_patient_id);

-- Code mapping between the platform and the HIS (departments, staff, drugs).
CREATE TABLE his_code_maps (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    kind          VARCHAR(16)   NOT NULL, -- department, staff, drug
    platform_code VARCHAR(64)   NOT NULL,
    his_code      VARCHAR(64)   NOT NULL,
    his_name      VARCHAR(200)  NOT NULL DEFAULT '',
    enabled       INTEGER       NOT NULL DEFAULT 1,
    version       BIGINT        NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL,
    deleted_at    VARCHAR(27)   NULL
);
CREATE UNIQUE INDEX his_code_maps_code ON his_code_maps (kind, platform_code);

-- +goose Down
DROP TABLE his_code_maps;
DROP TABLE patient_links;
DROP TABLE his_results;
DROP TABLE his_orders;
DROP TABLE his_catalog;
DROP TABLE his_inbox;
DROP TABLE his_messages;
DROP TABLE his_outbox;
