-- The hospital certificate authority (certs/ca): every certificate it issued,
-- with its revocation state, which its CRL and OCSP responder answer from, and
-- the counters it keeps (CRL number, revocation sequence). The CA's key and
-- certificate live in files; ca_id tells the rows of one CA from another's
-- when two share a database (an SM2 CA for signatures, an ECDSA CA for TLS).

-- +goose Up
CREATE TABLE ca_certs (
    serial        VARCHAR(40)   NOT NULL PRIMARY KEY, -- lower-case hex, no leading zeros
    ca_id         VARCHAR(64)   NOT NULL,             -- the issuing CA (hash of its public key)
    kind          VARCHAR(16)   NOT NULL,             -- root, staff, device, server, tsa, ocsp
    subject_cn    VARCHAR(200)  NOT NULL,
    subject_id    VARCHAR(64)   NOT NULL DEFAULT '',  -- e.g. the staff id
    not_before    VARCHAR(27)   NOT NULL,
    not_after     VARCHAR(27)   NOT NULL,
    status        VARCHAR(16)   NOT NULL,             -- good, revoked
    revoked_at    VARCHAR(27)   NULL,
    reason        INTEGER       NOT NULL DEFAULT 0,   -- RFC 5280 CRLReason
    cert_pem      TEXT          NOT NULL,
    created_at    VARCHAR(27)   NOT NULL
);
CREATE INDEX ca_certs_subject ON ca_certs (subject_id);
CREATE INDEX ca_certs_status ON ca_certs (ca_id, status);

CREATE TABLE ca_state (
    name          VARCHAR(100)  NOT NULL PRIMARY KEY, -- e.g. crl_number:<ca_id>
    value         VARCHAR(200)  NOT NULL
);

-- +goose Down
DROP TABLE ca_state;
DROP TABLE ca_certs;
