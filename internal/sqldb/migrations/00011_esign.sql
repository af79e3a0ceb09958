-- Staff e-signatures (医护人员电子签名): each doctor's or pharmacist's SM2 key
-- and certificate from the hospital CA, the private key sealed under a key
-- derived from the appliance's key-encryption key and the staff member's own
-- signing PIN, and the handwritten signature image they keep.

-- +goose Up
CREATE TABLE staff_keys (
    staff_id        VARCHAR(36)   NOT NULL PRIMARY KEY,
    name            VARCHAR(50)   NOT NULL,
    cert_serial     VARCHAR(40)   NOT NULL,
    cert_pem        TEXT          NOT NULL,
    sealed_key      TEXT          NOT NULL, -- base64(nonce || SM4-GCM(PKCS#8)), AAD = staff id
    salt            VARCHAR(64)   NOT NULL, -- hex, for the PIN derivation
    failed_attempts INTEGER       NOT NULL DEFAULT 0,
    locked_until    VARCHAR(27)   NULL,
    created_at      VARCHAR(27)   NOT NULL,
    updated_at      VARCHAR(27)   NOT NULL
);
CREATE INDEX staff_keys_serial ON staff_keys (cert_serial);

CREATE TABLE staff_signature_images (
    staff_id    VARCHAR(36)  NOT NULL PRIMARY KEY,
    image       MEDIUMTEXT   NOT NULL, -- base64 PNG
    updated_at  VARCHAR(27)  NOT NULL
);

-- +goose Down
DROP TABLE staff_signature_images;
DROP TABLE staff_keys;
