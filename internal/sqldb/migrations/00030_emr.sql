-- The online outpatient record (门诊电子病历, issue 8, DESIGN.md §7): written
-- by the visit's attending doctor in the doctor app, signed with their
-- e-signature. Cloud-owned, replicated to the appliance (emr_records and
-- emr_events). One row per version: a visit's record is the chain of rows
-- with its visit_id, revision 1, 2, …; a signed version is never changed, a
-- correction is a new draft version (revision + 1, supersedes naming the
-- signed one it replaces). Nothing is deleted; every change is a row of
-- emr_events (append only) and an audit record.
-- The diagnoses are a JSON array of {code, name} from the embedded ICD-10
-- table (package emr).
-- emr_templates are a doctor's own writing aids: cloud-only (not replicated).

-- +goose Up
CREATE TABLE emr_records (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id      VARCHAR(36)  NOT NULL DEFAULT '',
    visit_id         VARCHAR(36)  NOT NULL,
    revision         INTEGER      NOT NULL DEFAULT 1,     -- the record's version: 1, 2, … within the visit
    supersedes       VARCHAR(36)  NULL,                   -- the signed version this one corrects
    patient_id       VARCHAR(36)  NOT NULL,
    doctor_id        VARCHAR(36)  NOT NULL,               -- the attending doctor (staff id)
    doctor_name      VARCHAR(100) NOT NULL DEFAULT '',
    department_id    VARCHAR(36)  NOT NULL DEFAULT '',
    status           VARCHAR(16)  NOT NULL,               -- draft, signed
    chief_complaint  VARCHAR(1000) NOT NULL DEFAULT '',   -- 主诉
    present_illness  TEXT         NOT NULL,               -- 现病史
    past_history     TEXT         NOT NULL,               -- 既往史
    allergy_history  VARCHAR(1000) NOT NULL DEFAULT '',   -- 过敏史
    physical_exam    TEXT         NOT NULL,               -- 体格检查
    diagnoses        TEXT         NOT NULL,               -- JSON array of {code, name}
    advice           TEXT         NOT NULL,               -- 处理意见 / 医嘱
    revise_reason    VARCHAR(500) NOT NULL DEFAULT '',    -- why this version was made
    signed_doc       TEXT         NULL,                   -- the canonical JSON that was signed
    doc_sm3          VARCHAR(64)  NOT NULL DEFAULT '',    -- hex SM3 of signed_doc
    signature        TEXT         NULL,                   -- base64 detached PKCS#7
    signed_at        VARCHAR(27)  NULL,
    version          BIGINT       NOT NULL DEFAULT 1,
    created_at       VARCHAR(27)  NOT NULL,
    updated_at       VARCHAR(27)  NOT NULL,
    deleted_at       VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX emr_records_revision ON emr_records (visit_id, revision);
CREATE UNIQUE INDEX emr_records_supersedes ON emr_records (supersedes);
CREATE INDEX emr_records_patient ON emr_records (patient_id, created_at);

CREATE TABLE emr_events (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id      VARCHAR(36)  NOT NULL DEFAULT '',
    record_id        VARCHAR(36)  NOT NULL,
    visit_id         VARCHAR(36)  NOT NULL,
    action           VARCHAR(16)  NOT NULL,               -- create, update, sign, revise
    from_status      VARCHAR(16)  NOT NULL DEFAULT '',
    to_status        VARCHAR(16)  NOT NULL,
    actor_id         VARCHAR(64)  NOT NULL DEFAULT '',
    reason           VARCHAR(500) NOT NULL DEFAULT '',
    at               VARCHAR(27)  NOT NULL,
    version          BIGINT       NOT NULL DEFAULT 1,
    updated_at       VARCHAR(27)  NOT NULL,
    deleted_at       VARCHAR(27)  NULL
);
CREATE INDEX emr_events_record ON emr_events (record_id, at);
CREATE INDEX emr_events_visit ON emr_events (visit_id, at);

CREATE TABLE emr_templates (
    id               VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id      VARCHAR(36)  NOT NULL DEFAULT '',
    doctor_id        VARCHAR(36)  NOT NULL,
    name             VARCHAR(100) NOT NULL,
    chief_complaint  VARCHAR(1000) NOT NULL DEFAULT '',
    present_illness  TEXT         NOT NULL,
    past_history     TEXT         NOT NULL,
    allergy_history  VARCHAR(1000) NOT NULL DEFAULT '',
    physical_exam    TEXT         NOT NULL,
    diagnoses        TEXT         NOT NULL,
    advice           TEXT         NOT NULL,
    enabled          INTEGER      NOT NULL DEFAULT 1,
    version          BIGINT       NOT NULL DEFAULT 1,
    created_at       VARCHAR(27)  NOT NULL,
    updated_at       VARCHAR(27)  NOT NULL,
    deleted_at       VARCHAR(27)  NULL
);
CREATE INDEX emr_templates_doctor ON emr_templates (doctor_id, enabled, name);

-- +goose Down
DROP TABLE emr_templates;
DROP TABLE emr_events;
DROP TABLE emr_records;
