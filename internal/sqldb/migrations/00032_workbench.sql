-- The doctor's workspace (医生工作台, issue 8; package workbench): favourite
-- catalogue items, treatment-plan templates, order phrases (医嘱术语) and
-- patient management (groups, tags, key patients, notes).
--
-- Cloud-owned and NOT replicated: these are one doctor's working aids in the
-- doctor app, not clinical records and not data the hospital's console or HIS
-- acts on (DESIGN.md §2 lists what flows to the appliance; a doctor's personal
-- settings are not on it). What a doctor writes with them (EMR, prescriptions,
-- orders) replicates through its own tables. Every change is in the cloud's
-- audit log.

-- +goose Up
-- A doctor's favourite drug, exam or lab items of the HIS catalogue
-- (his_catalog, by code); name is the catalogue's name when it was added, shown
-- if the item later leaves the catalogue.
CREATE TABLE doctor_favourites (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    doctor_id     VARCHAR(36)  NOT NULL,
    kind          VARCHAR(8)   NOT NULL,               -- drug, exam, lab
    code          VARCHAR(64)  NOT NULL,
    name          VARCHAR(200) NOT NULL DEFAULT '',
    created_at    VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX doctor_favourites_item ON doctor_favourites (doctor_id, kind, code);

-- 治疗方案模板: diagnoses, drug lines and exam/lab lines as JSON arrays; the
-- catalogue prices them when used, never the template. Disabled, never deleted.
CREATE TABLE doctor_plans (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)   NOT NULL DEFAULT '',
    doctor_id     VARCHAR(36)   NOT NULL,
    name          VARCHAR(50)   NOT NULL,
    diagnoses     TEXT          NOT NULL,
    drugs         TEXT          NOT NULL,
    exams         TEXT          NOT NULL,
    advice        VARCHAR(1000) NOT NULL DEFAULT '',
    enabled       INTEGER       NOT NULL DEFAULT 1,
    version       BIGINT        NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL
);
CREATE INDEX doctor_plans_doctor ON doctor_plans (doctor_id, enabled, name);

-- 医嘱术语: doctor_id '' is a default every doctor sees (hospital_id '' for
-- every hospital, or one hospital's); otherwise the doctor's own.
-- code is the short form prescriptions carry (qd, bid, …), '' when none.
CREATE TABLE order_phrases (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    doctor_id     VARCHAR(36)  NOT NULL DEFAULT '',
    category      VARCHAR(16)  NOT NULL,               -- usage, frequency, dosage, advice
    code          VARCHAR(16)  NOT NULL DEFAULT '',
    phrase        VARCHAR(100) NOT NULL,
    sort_order    INTEGER      NOT NULL DEFAULT 0,
    enabled       INTEGER      NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)  NOT NULL,
    updated_at    VARCHAR(27)  NOT NULL
);
CREATE INDEX order_phrases_doctor ON order_phrases (doctor_id, category, sort_order);

INSERT INTO order_phrases (id, category, code, phrase, sort_order, created_at, updated_at) VALUES
('phr-usage-01', 'usage', 'po', '口服', 10, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-02', 'usage', 'ivgtt', '静脉滴注', 20, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-03', 'usage', 'iv', '静脉注射', 30, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-04', 'usage', 'im', '肌内注射', 40, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-05', 'usage', 'ih', '皮下注射', 50, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-06', 'usage', '', '外用', 60, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-07', 'usage', '', '雾化吸入', 70, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-08', 'usage', '', '舌下含服', 80, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-09', 'usage', '', '滴眼', 90, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-usage-10', 'usage', '', '含漱', 100, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-01', 'frequency', 'qd', '每日一次', 10, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-02', 'frequency', 'bid', '每日两次', 20, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-03', 'frequency', 'tid', '每日三次', 30, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-04', 'frequency', 'qid', '每日四次', 40, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-05', 'frequency', 'qn', '每晚一次', 50, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-06', 'frequency', 'q8h', '每8小时一次', 60, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-07', 'frequency', 'q12h', '每12小时一次', 70, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-08', 'frequency', 'qw', '每周一次', 80, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-09', 'frequency', 'prn', '必要时', 90, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-freq-10', 'frequency', 'st', '立即', 100, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-dose-01', 'dosage', '', '每次1片', 10, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-dose-02', 'dosage', '', '每次2片', 20, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-dose-03', 'dosage', '', '每次1粒', 30, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-dose-04', 'dosage', '', '每次10ml', 40, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-dose-05', 'dosage', '', '每次1袋', 50, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-dose-06', 'dosage', '', '遵医嘱', 60, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-01', 'advice', '', '低盐低脂饮食', 10, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-02', 'advice', '', '糖尿病饮食，控制总热量', 20, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-03', 'advice', '', '按时服药，不可自行停药或减量', 30, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-04', 'advice', '', '监测血压，每日早晚各一次并记录', 40, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-05', 'advice', '', '监测血糖并记录', 50, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-06', 'advice', '', '戒烟限酒，适量运动，规律作息', 60, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-07', 'advice', '', '多饮水，注意休息', 70, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-08', 'advice', '', '两周后复诊', 80, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-09', 'advice', '', '一个月后复诊', 90, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z'),
('phr-advice-10', 'advice', '', '如症状加重或出现胸痛、呼吸困难等不适，请立即到医院急诊就诊', 100, '2026-11-26T00:00:00.000000Z', '2026-11-26T00:00:00.000000Z');

-- Patient management: one row per doctor and patient the doctor marked (key
-- patient, note); groups and tags are rows of doctor_patient_labels, the
-- doctor's groups (also empty ones) rows of doctor_patient_groups.
CREATE TABLE doctor_patients (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    doctor_id     VARCHAR(36)  NOT NULL,
    patient_id    VARCHAR(36)  NOT NULL,
    key_patient   INTEGER      NOT NULL DEFAULT 0,
    note          VARCHAR(500) NOT NULL DEFAULT '',
    version       BIGINT       NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)  NOT NULL,
    updated_at    VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX doctor_patients_pair ON doctor_patients (doctor_id, patient_id);

CREATE TABLE doctor_patient_groups (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    doctor_id     VARCHAR(36)  NOT NULL,
    name          VARCHAR(20)  NOT NULL,
    created_at    VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX doctor_patient_groups_name ON doctor_patient_groups (doctor_id, name);

CREATE TABLE doctor_patient_labels (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    doctor_id     VARCHAR(36)  NOT NULL,
    patient_id    VARCHAR(36)  NOT NULL,
    kind          VARCHAR(8)   NOT NULL,               -- group, tag
    name          VARCHAR(20)  NOT NULL,
    created_at    VARCHAR(27)  NOT NULL
);
CREATE UNIQUE INDEX doctor_patient_labels_name ON doctor_patient_labels (doctor_id, patient_id, kind, name);
CREATE INDEX doctor_patient_labels_filter ON doctor_patient_labels (doctor_id, kind, name);

-- +goose Down
DROP TABLE doctor_patient_labels;
DROP TABLE doctor_patient_groups;
DROP TABLE doctor_patients;
DROP TABLE order_phrases;
DROP TABLE doctor_plans;
DROP TABLE doctor_favourites;
