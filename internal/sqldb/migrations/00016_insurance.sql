-- The national medical insurance platform link (package insurance). Every
-- call the appliance makes is logged here from insurance.Client.Observe, by
-- msgid: the key a timed-out settlement is repeated or reversed (2601) by,
-- and what the insurance office asks for when a settlement is disputed.
-- Bodies are stored with personal data masked (insurance.MaskJSON).

-- +goose Up
CREATE TABLE insurance_calls (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    at            VARCHAR(27)  NOT NULL,
    infno         VARCHAR(4)   NOT NULL,
    msgid         VARCHAR(30)  NOT NULL, -- repeated when a call is retried under the same msgid
    inf_refmsgid  VARCHAR(30)  NOT NULL DEFAULT '',
    infcode       INTEGER      NOT NULL DEFAULT 0,
    answered      INTEGER      NOT NULL DEFAULT 0, -- 1 when the platform answered (infcode valid)
    error         VARCHAR(500) NOT NULL DEFAULT '',
    elapsed_ms    INTEGER      NOT NULL DEFAULT 0,
    request       MEDIUMTEXT   NOT NULL,
    response      MEDIUMTEXT   NOT NULL
);
CREATE INDEX insurance_calls_msgid ON insurance_calls (msgid);
CREATE INDEX insurance_calls_at ON insurance_calls (at);
CREATE INDEX insurance_calls_infno ON insurance_calls (infno, at);

-- +goose Down
DROP TABLE insurance_calls;
