-- A doctor's own profile (introduction, specialty, notice to patients, whether
-- they take online consultations now). Both sides write it: the doctor in the
-- app (cloud), the hospital in the console (appliance). Sync merges it field by
-- field, last writer wins on a hybrid logical clock.

-- +goose Up
CREATE TABLE doctor_profiles (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)   NOT NULL DEFAULT '',
    staff_id      VARCHAR(36)   NOT NULL,
    intro         TEXT          NULL,
    specialty     VARCHAR(500)  NOT NULL DEFAULT '',
    notice        VARCHAR(500)  NOT NULL DEFAULT '',
    accepting     INTEGER       NOT NULL DEFAULT 1,
    enabled       INTEGER       NOT NULL DEFAULT 1,
    version       BIGINT        NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL,
    deleted_at    VARCHAR(27)   NULL
);
CREATE INDEX doctor_profiles_staff ON doctor_profiles (staff_id);
CREATE INDEX doctor_profiles_hospital ON doctor_profiles (hospital_id);

-- +goose Down
DROP TABLE doctor_profiles;
