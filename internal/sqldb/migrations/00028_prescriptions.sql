-- Online prescriptions (互联网处方, issue 8, DESIGN.md §7): written by the
-- visit's attending doctor from the current HIS catalogue, signed with their
-- e-signature, reviewed by a pharmacist, then paid and sent to the HIS.
-- Cloud-owned, replicated to the appliance. Nothing is ever deleted: a
-- rejected prescription is corrected by a new version (a new row with the same
-- series_id, revision + 1 and previous_id naming the rejected one), and every
-- status change is a row of prescription_events (append only).
-- The lines are a JSON array in items: priced from the catalogue when the
-- draft is written, frozen (and signed) when the doctor signs.

-- +goose Up
CREATE TABLE prescriptions (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    series_id      VARCHAR(36)  NOT NULL,               -- the first version's id
    revision       INTEGER      NOT NULL DEFAULT 1,     -- 1, 2, … within the series
    previous_id    VARCHAR(36)  NULL,                   -- the rejected version this one corrects
    visit_id       VARCHAR(36)  NOT NULL,
    patient_id     VARCHAR(36)  NOT NULL,
    doctor_id      VARCHAR(36)  NOT NULL,               -- the attending doctor (staff id)
    department_id  VARCHAR(36)  NOT NULL DEFAULT '',
    status         VARCHAR(16)  NOT NULL,               -- draft, signed, under_review, approved, rejected, paid, sent_to_his
    diagnosis      VARCHAR(500) NOT NULL DEFAULT '',
    note           VARCHAR(500) NOT NULL DEFAULT '',
    items          TEXT         NOT NULL,               -- JSON array of lines
    total_fen      BIGINT       NOT NULL DEFAULT 0,
    signed_doc     TEXT         NULL,                   -- the canonical JSON that was signed
    doc_sm3        VARCHAR(64)  NOT NULL DEFAULT '',    -- hex SM3 of signed_doc
    signature      TEXT         NULL,                   -- base64 detached PKCS#7
    signed_at      VARCHAR(27)  NULL,
    submitted_at   VARCHAR(27)  NULL,
    reviewer_id    VARCHAR(36)  NOT NULL DEFAULT '',    -- the pharmacist (staff id)
    reviewed_at    VARCHAR(27)  NULL,
    review_reason  VARCHAR(500) NOT NULL DEFAULT '',    -- why it was rejected (the doctor reads it)
    payment_id     VARCHAR(36)  NOT NULL DEFAULT '',
    paid_at        VARCHAR(27)  NULL,
    his_orders     VARCHAR(1000) NOT NULL DEFAULT '',   -- comma-separated placer order numbers
    sent_at        VARCHAR(27)  NULL,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX prescriptions_revision ON prescriptions (series_id, revision);
CREATE UNIQUE INDEX prescriptions_previous ON prescriptions (previous_id);
CREATE INDEX prescriptions_visit ON prescriptions (visit_id, created_at);
CREATE INDEX prescriptions_review ON prescriptions (hospital_id, status, submitted_at);

CREATE TABLE prescription_events (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    prescription_id VARCHAR(36)  NOT NULL,
    from_status     VARCHAR(16)  NOT NULL DEFAULT '',
    to_status       VARCHAR(16)  NOT NULL,
    actor_id        VARCHAR(64)  NOT NULL DEFAULT '',
    reason          VARCHAR(500) NOT NULL DEFAULT '',
    at              VARCHAR(27)  NOT NULL,
    version         BIGINT       NOT NULL DEFAULT 1,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL
);
CREATE INDEX prescription_events_prescription ON prescription_events (prescription_id, at);

-- +goose Down
DROP TABLE prescription_events;
DROP TABLE prescriptions;
