-- Ticket printers and their durable print queue (printing package). Both live
-- only on the appliance, which owns the printers; nothing here replicates.

-- +goose Up
-- The printers, an admin resource ("printers") configured in the console.
CREATE TABLE printers (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    name          VARCHAR(100)  NOT NULL,
    location      VARCHAR(100)  NOT NULL DEFAULT '',
    transport     VARCHAR(16)   NOT NULL,              -- tcp, serial, usblp, spooler, usb
    address       VARCHAR(255)  NOT NULL,              -- host:port, /dev/ttyUSB0,9600, printer name, VID:PID
    paper_mm      VARCHAR(4)    NOT NULL DEFAULT '80', -- 58, 80, 106
    code_page     VARCHAR(16)   NOT NULL DEFAULT 'GB18030',
    enabled       INTEGER       NOT NULL DEFAULT 1,
    version       BIGINT        NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL,
    deleted_at    VARCHAR(27)   NULL
);
CREATE INDEX printers_name ON printers (name);

-- The print queue. A job's bytes are stored when it is queued, so a reprint is
-- the same ticket and nothing depends on data that may change later. Each
-- printer's jobs print strictly in seq order.
CREATE TABLE print_jobs (
    id              VARCHAR(36)   NOT NULL PRIMARY KEY,
    printer_id      VARCHAR(36)   NOT NULL,
    seq             BIGINT        NOT NULL,              -- order within the printer
    kind            VARCHAR(32)   NOT NULL,              -- registration, receipt, …, test
    title           VARCHAR(100)  NOT NULL DEFAULT '',
    data            MEDIUMBLOB    NOT NULL,              -- the ESC/POS bytes
    status          VARCHAR(16)   NOT NULL,              -- queued, printing, printed, failed, cancelled, unknown
    attempts        INTEGER       NOT NULL DEFAULT 0,    -- times the bytes were sent
    next_attempt_at VARCHAR(27)   NOT NULL,
    last_error      VARCHAR(500)  NOT NULL DEFAULT '',
    source          VARCHAR(100)  NOT NULL DEFAULT '',   -- kiosk:<id>, console:<user>, …
    patient_ref     VARCHAR(64)   NOT NULL DEFAULT '',
    reprint_of      VARCHAR(36)   NOT NULL DEFAULT '',
    created_at      VARCHAR(27)   NOT NULL,
    updated_at      VARCHAR(27)   NOT NULL,
    printed_at      VARCHAR(27)   NULL
);
CREATE UNIQUE INDEX print_jobs_seq ON print_jobs (printer_id, seq);
CREATE INDEX print_jobs_lane ON print_jobs (printer_id, status, seq);
CREATE INDEX print_jobs_status ON print_jobs (status, created_at);
CREATE INDEX print_jobs_patient ON print_jobs (patient_ref, created_at);
CREATE INDEX print_jobs_created ON print_jobs (created_at);

-- +goose Down
DROP TABLE print_jobs;
DROP TABLE printers;
