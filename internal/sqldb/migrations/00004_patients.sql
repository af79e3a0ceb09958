-- Patient accounts: owned by the cloud (patients sign up on the mini-program /
-- H5), replicated to their hospital's appliance. Personal data is sealed under
-- the owning side's key with a blind index beside it.

-- +goose Up
CREATE TABLE patients (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id     VARCHAR(36)  NOT NULL DEFAULT '',
    name            VARCHAR(50)  NOT NULL,
    gender          VARCHAR(8)   NOT NULL DEFAULT '',
    birth_year      INTEGER      NOT NULL DEFAULT 0,
    phone           VARCHAR(200) NOT NULL DEFAULT '',
    phone_bidx      VARCHAR(64)  NOT NULL DEFAULT '',
    id_number       VARCHAR(200) NOT NULL DEFAULT '',
    id_number_bidx  VARCHAR(64)  NOT NULL DEFAULT '',
    enabled         INTEGER      NOT NULL DEFAULT 1,
    version         BIGINT       NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL
);
CREATE INDEX patients_hospital ON patients (hospital_id, created_at);
CREATE INDEX patients_phone_bidx ON patients (phone_bidx);
CREATE INDEX patients_id_number_bidx ON patients (id_number_bidx);

-- +goose Down
DROP TABLE patients;
