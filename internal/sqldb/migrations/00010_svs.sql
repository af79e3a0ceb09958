-- The signing/verification server (certs/svs): the applications that may call
-- it and their policies, the named signing keys (private keys sealed with
-- SM4-GCM under the appliance's key-encryption key), the imported trust chains
-- with the last good CRL of each, the certificate store administrators import
-- client certificates into, the signature log, and the service's settings.

-- +goose Up
CREATE TABLE svs_apps (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    name          VARCHAR(100)  NOT NULL,
    token_hash    VARCHAR(64)   NOT NULL,             -- SM3 hex of the bearer token; the token itself is never stored
    key_name      VARCHAR(64)   NOT NULL,             -- svs_keys.name the application signs with
    trust_chain   VARCHAR(500)  NOT NULL,             -- comma-separated chain names; "hospital" is the hospital CA
    revocation    VARCHAR(16)   NOT NULL,             -- none, crl, ocsp, crl+ocsp (what verify level 2 checks)
    use_timestamp INTEGER       NOT NULL DEFAULT 0,   -- sign-message adds a timestamp token
    note          VARCHAR(200)  NOT NULL DEFAULT '',
    enabled       INTEGER       NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL
);
CREATE UNIQUE INDEX svs_apps_name ON svs_apps (name);
CREATE UNIQUE INDEX svs_apps_token ON svs_apps (token_hash);

CREATE TABLE svs_keys (
    name          VARCHAR(64)   NOT NULL PRIMARY KEY,
    algorithm     VARCHAR(16)   NOT NULL,             -- SM2
    cert_pem      TEXT          NOT NULL,
    sealed_key    TEXT          NOT NULL,             -- base64 of nonce ‖ SM4-GCM(KEK, PKCS#8 DER)
    created_at    VARCHAR(27)   NOT NULL
);

CREATE TABLE svs_trust (
    id               VARCHAR(36)   NOT NULL PRIMARY KEY,
    chain            VARCHAR(64)   NOT NULL,
    kind             VARCHAR(16)   NOT NULL,          -- root, intermediate
    subject          VARCHAR(500)  NOT NULL,
    fingerprint      VARCHAR(64)   NOT NULL,          -- SM3 hex of the DER certificate
    cert_pem         TEXT          NOT NULL,
    crl_url          VARCHAR(500)  NOT NULL DEFAULT '',
    crl              MEDIUMTEXT    NULL,              -- base64 DER of the last good CRL
    crl_this_update  VARCHAR(27)   NULL,
    crl_next_update  VARCHAR(27)   NULL,
    crl_fetched_at   VARCHAR(27)   NULL,
    crl_error        VARCHAR(500)  NOT NULL DEFAULT '',
    created_at       VARCHAR(27)   NOT NULL
);
CREATE UNIQUE INDEX svs_trust_cert ON svs_trust (chain, fingerprint);

CREATE TABLE svs_certs (
    serial        VARCHAR(64)   NOT NULL PRIMARY KEY, -- lower-case hex
    subject       VARCHAR(500)  NOT NULL,
    issuer        VARCHAR(500)  NOT NULL,
    subject_id    VARCHAR(64)   NOT NULL DEFAULT '',  -- the staff id when the hospital CA issued it
    common_name   VARCHAR(200)  NOT NULL DEFAULT '',
    not_before    VARCHAR(27)   NOT NULL,
    not_after     VARCHAR(27)   NOT NULL,
    cert_pem      TEXT          NOT NULL,
    imported_by   VARCHAR(64)   NOT NULL DEFAULT '',
    imported_at   VARCHAR(27)   NOT NULL
);
CREATE INDEX svs_certs_subject_id ON svs_certs (subject_id);
CREATE INDEX svs_certs_cn ON svs_certs (common_name);
CREATE INDEX svs_certs_imported ON svs_certs (imported_at);

-- One row per operation, written by the group-commit writer before the
-- answer leaves the server.
CREATE TABLE svs_log (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    at            VARCHAR(27)   NOT NULL,
    app           VARCHAR(100)  NOT NULL,
    op            VARCHAR(16)   NOT NULL,             -- sign, verify, sign_message, verify_message, timestamp
    key_name      VARCHAR(64)   NOT NULL DEFAULT '',
    data_sm3      VARCHAR(64)   NOT NULL,
    data_len      BIGINT        NOT NULL,
    result        VARCHAR(4)    NOT NULL,             -- ok, fail
    reason        VARCHAR(500)  NOT NULL DEFAULT '',
    signer_serial VARCHAR(64)   NOT NULL DEFAULT '',
    remote        VARCHAR(64)   NOT NULL DEFAULT ''
);
CREATE INDEX svs_log_at ON svs_log (at);
CREATE INDEX svs_log_app ON svs_log (app, at);

CREATE TABLE svs_settings (
    name          VARCHAR(100)  NOT NULL PRIMARY KEY,
    value         VARCHAR(500)  NOT NULL
);

-- +goose Down
DROP TABLE svs_settings;
DROP TABLE svs_log;
DROP TABLE svs_certs;
DROP TABLE svs_trust;
DROP TABLE svs_keys;
DROP TABLE svs_apps;
