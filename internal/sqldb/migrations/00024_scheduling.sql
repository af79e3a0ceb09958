-- Online scheduling and booking (issue 8). The appliance owns the rules
-- (consultation settings, online schedules, number-release rules: admin
-- resources replicated to the cloud); the cloud alone allocates slots, so a
-- slot can never be sold twice (package booking).

-- +goose Up
-- 在线问诊设置: fee (fen) and duration (minutes) per visit type, for every
-- doctor of a title (title set) or for one doctor (staff_id set; it beats the
-- title's row).
CREATE TABLE consultation_settings (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    title          VARCHAR(16)  NOT NULL DEFAULT '',
    staff_id       VARCHAR(36)  NULL,
    text_enabled   INTEGER      NOT NULL DEFAULT 0,
    text_fee       BIGINT       NOT NULL DEFAULT 0,
    text_minutes   INTEGER      NOT NULL DEFAULT 0,
    voice_enabled  INTEGER      NOT NULL DEFAULT 0,
    voice_fee      BIGINT       NOT NULL DEFAULT 0,
    voice_minutes  INTEGER      NOT NULL DEFAULT 0,
    video_enabled  INTEGER      NOT NULL DEFAULT 0,
    video_fee      BIGINT       NOT NULL DEFAULT 0,
    video_minutes  INTEGER      NOT NULL DEFAULT 0,
    enabled        INTEGER      NOT NULL DEFAULT 1,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
CREATE INDEX consultation_settings_staff ON consultation_settings (staff_id);
CREATE INDEX consultation_settings_title ON consultation_settings (title);
CREATE INDEX consultation_settings_hospital ON consultation_settings (hospital_id);

-- 在线问诊排班管理: one sitting of one doctor on one day for one visit type,
-- cut into slots of slot_minutes, or into slot_count equal slots.
CREATE TABLE online_schedules (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    staff_id       VARCHAR(36)  NOT NULL,
    visit_date     VARCHAR(10)  NOT NULL,              -- YYYY-MM-DD, hospital time
    start_time     VARCHAR(5)   NOT NULL,              -- HH:MM
    end_time       VARCHAR(5)   NOT NULL,
    visit_type     VARCHAR(8)   NOT NULL,              -- text, voice, video
    slot_minutes   INTEGER      NOT NULL DEFAULT 0,
    slot_count     INTEGER      NOT NULL DEFAULT 0,
    note           VARCHAR(200) NOT NULL DEFAULT '',
    enabled        INTEGER      NOT NULL DEFAULT 1,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
CREATE INDEX online_schedules_staff ON online_schedules (staff_id, visit_date, start_time);
CREATE INDEX online_schedules_date ON online_schedules (visit_date, start_time);
CREATE INDEX online_schedules_hospital ON online_schedules (hospital_id);

-- 放号规则设置: when the slots of a day are released and how many patients
-- one slot takes; department_id NULL is the hospital's default.
CREATE TABLE release_rules (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    department_id  VARCHAR(36)  NULL,
    days_ahead     INTEGER      NOT NULL DEFAULT 7,
    release_time   VARCHAR(5)   NOT NULL DEFAULT '08:00',
    quota          INTEGER      NOT NULL DEFAULT 1,
    enabled        INTEGER      NOT NULL DEFAULT 1,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
CREATE INDEX release_rules_department ON release_rules (department_id);
CREATE INDEX release_rules_hospital ON release_rules (hospital_id);

-- The cloud's allocation counter of one slot (not replicated): id is
-- "<schedule id>:<slot number>", booked the units taken. The row is made the
-- first time the slot is booked.
CREATE TABLE booking_slots (
    id             VARCHAR(48)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    schedule_id    VARCHAR(36)  NOT NULL,
    booked         INTEGER      NOT NULL DEFAULT 0,
    updated_at     VARCHAR(27)  NOT NULL
);
CREATE INDEX booking_slots_schedule ON booking_slots (schedule_id);

-- Bookings (cloud-owned, replicated to the hospital). active_key is
-- "<slot id>/<patient id>" while the booking holds its unit and NULL after
-- it is cancelled: the unique index is what stops one patient holding two
-- bookings of one slot. It stays in the cloud.
CREATE TABLE bookings (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL DEFAULT '',
    slot_id        VARCHAR(48)  NOT NULL,
    schedule_id    VARCHAR(36)  NOT NULL,
    staff_id       VARCHAR(36)  NOT NULL,
    department_id  VARCHAR(36)  NOT NULL DEFAULT '',
    patient_id     VARCHAR(36)  NOT NULL,
    visit_type     VARCHAR(8)   NOT NULL,
    start_at       VARCHAR(27)  NOT NULL,
    end_at         VARCHAR(27)  NOT NULL,
    fee            BIGINT       NOT NULL DEFAULT 0,
    minutes        INTEGER      NOT NULL DEFAULT 0,
    status         VARCHAR(16)  NOT NULL,              -- awaiting_payment, booked, cancelled
    active_key     VARCHAR(100) NULL,
    cancel_reason  VARCHAR(200) NOT NULL DEFAULT '',
    cancelled_at   VARCHAR(27)  NULL,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    deleted_at     VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX bookings_active_key ON bookings (active_key);
CREATE INDEX bookings_slot ON bookings (slot_id);
CREATE INDEX bookings_patient ON bookings (patient_id, created_at);
CREATE INDEX bookings_staff ON bookings (staff_id, start_at);
CREATE INDEX bookings_hospital ON bookings (hospital_id, created_at);

-- +goose Down
DROP TABLE bookings;
DROP TABLE booking_slots;
DROP TABLE release_rules;
DROP TABLE online_schedules;
DROP TABLE consultation_settings;
