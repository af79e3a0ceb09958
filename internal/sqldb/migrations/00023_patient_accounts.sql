-- Patient accounts (issue 8): a patient signs in on the H5 pages / the
-- mini-program with their phone number and an SMS code. The account is the
-- login; the people it acts for (the holder after real-name verification, and
-- family members) are rows of patients, tied to the account by
-- patient_members. All four tables are cloud-owned and stay in the cloud (not
-- replicated): the patients rows they point at replicate as before.
-- Phone numbers are sealed (internal/pii) with a blind index beside them;
-- codes and session tokens are kept only as keyed hashes.

-- +goose Up
CREATE TABLE patient_accounts (
    id             VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id    VARCHAR(36)  NOT NULL,
    phone          VARCHAR(200) NOT NULL,               -- sealed
    phone_bidx     VARCHAR(64)  NOT NULL,
    patient_id     VARCHAR(36)  NOT NULL DEFAULT '',    -- the holder's patients row, '' until real-name verified
    enabled        INTEGER      NOT NULL DEFAULT 1,
    version        BIGINT       NOT NULL DEFAULT 1,
    created_at     VARCHAR(27)  NOT NULL,
    updated_at     VARCHAR(27)  NOT NULL,
    last_login_at  VARCHAR(27)  NULL,
    verified_at    VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX patient_accounts_phone ON patient_accounts (hospital_id, phone_bidx);
CREATE INDEX patient_accounts_patient ON patient_accounts (patient_id);

CREATE TABLE patient_members (
    id              VARCHAR(36)  NOT NULL PRIMARY KEY,
    account_id      VARCHAR(36)  NOT NULL,
    hospital_id     VARCHAR(36)  NOT NULL,
    patient_id      VARCHAR(36)  NOT NULL,
    relation        VARCHAR(12)  NOT NULL,              -- self, child, parent, spouse, other
    guardian        INTEGER      NOT NULL DEFAULT 0,    -- the account holder is this member's guardian (监护人)
    birth_date      VARCHAR(10)  NOT NULL,              -- YYYY-MM-DD, from the ID number
    his_patient_id  VARCHAR(64)  NOT NULL DEFAULT '',   -- the HIS record, once linked
    link_status     VARCHAR(12)  NOT NULL DEFAULT '',   -- '', linked, review (his.PatientLink.Status)
    linked_at       VARCHAR(27)  NULL,
    version         BIGINT       NOT NULL DEFAULT 1,
    created_at      VARCHAR(27)  NOT NULL,
    updated_at      VARCHAR(27)  NOT NULL,
    deleted_at      VARCHAR(27)  NULL,
    CONSTRAINT patient_members_relation CHECK (relation IN ('self', 'child', 'parent', 'spouse', 'other'))
);
CREATE UNIQUE INDEX patient_members_person ON patient_members (account_id, patient_id);
CREATE INDEX patient_members_patient ON patient_members (patient_id);

CREATE TABLE patient_sms_codes (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    phone_bidx  VARCHAR(64)  NOT NULL,
    code_hash   VARCHAR(64)  NOT NULL,                  -- keyed hash of id and code
    ip          VARCHAR(64)  NOT NULL DEFAULT '',
    attempts    INTEGER      NOT NULL DEFAULT 0,        -- wrong codes tried
    created_at  VARCHAR(27)  NOT NULL,
    expires_at  VARCHAR(27)  NOT NULL,
    used_at     VARCHAR(27)  NULL
);
CREATE INDEX patient_sms_codes_phone ON patient_sms_codes (phone_bidx, created_at);
CREATE INDEX patient_sms_codes_ip ON patient_sms_codes (ip, created_at);

CREATE TABLE patient_sessions (
    token_hash    VARCHAR(64)  NOT NULL PRIMARY KEY,
    account_id    VARCHAR(36)  NOT NULL,
    csrf_token    VARCHAR(64)  NOT NULL,
    ip            VARCHAR(64)  NOT NULL DEFAULT '',
    user_agent    VARCHAR(200) NOT NULL DEFAULT '',
    created_at    VARCHAR(27)  NOT NULL,
    expires_at    VARCHAR(27)  NOT NULL,
    last_seen_at  VARCHAR(27)  NOT NULL
);
CREATE INDEX patient_sessions_account ON patient_sessions (account_id);

-- +goose Down
DROP TABLE patient_sessions;
DROP TABLE patient_sms_codes;
DROP TABLE patient_members;
DROP TABLE patient_accounts;
