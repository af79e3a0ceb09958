-- Body-worn recorders (工作记录仪) of home-nursing staff (package recorder,
-- docs in recorder/doc.go). The appliance imports the recorders' video files
-- from USB sticks and console uploads into a content-addressed store and keeps
-- them at least three years; these tables live only on the appliance.

-- +goose Up
-- The recorders the hospital issued, and the nurse each is issued to: an
-- imported file is attached to that nurse (admin resource "recorder_devices").
CREATE TABLE recorder_devices (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    serial        VARCHAR(64)   NOT NULL,             -- the device id in file names, e.g. DSJ-A1-0007
    name          VARCHAR(100)  NOT NULL DEFAULT '',
    model         VARCHAR(100)  NOT NULL DEFAULT '',
    staff_id      VARCHAR(36)   NOT NULL DEFAULT '',  -- the nurse it is issued to (staff.id)
    note          VARCHAR(200)  NOT NULL DEFAULT '',
    enabled       INTEGER       NOT NULL DEFAULT 1,
    version       BIGINT        NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL,
    deleted_at    VARCHAR(27)   NULL
);
CREATE INDEX recorder_devices_serial ON recorder_devices (serial);

-- One stored video file. The file lives at <recordings dir>/<stored_path>,
-- named by its SM3, so the same content is stored once (sm3 is unique).
CREATE TABLE recordings (
    id             VARCHAR(36)   NOT NULL PRIMARY KEY,
    sm3            VARCHAR(64)   NOT NULL,
    size           BIGINT        NOT NULL,
    ext            VARCHAR(8)    NOT NULL,
    device_serial  VARCHAR(64)   NOT NULL DEFAULT '',
    staff_no       VARCHAR(32)   NOT NULL DEFAULT '',   -- the user (工号) the recorder wrote, if any
    nurse_id       VARCHAR(36)   NOT NULL DEFAULT '',   -- staff.id, '' when the device is not registered
    order_id       VARCHAR(36)   NOT NULL DEFAULT '',   -- the home-nursing order, '' when none matched
    started_at     VARCHAR(27)   NOT NULL,
    duration_ms    BIGINT        NOT NULL DEFAULT 0,
    gps            VARCHAR(40)   NOT NULL DEFAULT '',   -- "lat,lon" of the start, when the device wrote it
    source_name    VARCHAR(255)  NOT NULL,              -- the file name on the recorder
    source_path    VARCHAR(1000) NOT NULL DEFAULT '',   -- where it was imported from
    stored_path    VARCHAR(255)  NOT NULL,              -- relative to the recordings dir, slash separated
    import_id      VARCHAR(36)   NOT NULL DEFAULT '',
    import_source  VARCHAR(8)    NOT NULL,              -- usb, upload
    imported_by    VARCHAR(64)   NOT NULL DEFAULT '',
    imported_at    VARCHAR(27)   NOT NULL,
    retain_until   VARCHAR(27)   NOT NULL,              -- never deleted before
    legal_hold     INTEGER       NOT NULL DEFAULT 0,    -- legal hold: never deleted while set
    hold_reason    VARCHAR(200)  NOT NULL DEFAULT '',
    status         VARCHAR(12)   NOT NULL,              -- ok, suspect, tampered, missing, deleted
    note           VARCHAR(500)  NOT NULL DEFAULT '',
    original_id    VARCHAR(36)   NOT NULL DEFAULT '',   -- suspect: the first import of the same file
    checked_at     VARCHAR(27)   NOT NULL,              -- last SM3 re-check of the stored file
    deleted_at     VARCHAR(27)   NULL
);
CREATE UNIQUE INDEX recordings_sm3 ON recordings (sm3);
CREATE INDEX recordings_started ON recordings (started_at);
CREATE INDEX recordings_nurse ON recordings (nurse_id, started_at);
CREATE INDEX recordings_order ON recordings (order_id);
CREATE INDEX recordings_source ON recordings (device_serial, source_name);
CREATE INDEX recordings_status ON recordings (status);
CREATE INDEX recordings_checked ON recordings (checked_at);

-- One import run (a USB stick or a console upload), with its progress.
CREATE TABLE recording_imports (
    id               VARCHAR(36)   NOT NULL PRIMARY KEY,
    source           VARCHAR(8)    NOT NULL,              -- usb, upload
    location         VARCHAR(1000) NOT NULL DEFAULT '',   -- mount point or upload batch
    device_serials   VARCHAR(500)  NOT NULL DEFAULT '',
    status           VARCHAR(12)   NOT NULL,              -- running, done, failed, interrupted
    files_found      INTEGER       NOT NULL DEFAULT 0,
    files_new        INTEGER       NOT NULL DEFAULT 0,
    files_duplicate  INTEGER       NOT NULL DEFAULT 0,
    files_changed    INTEGER       NOT NULL DEFAULT 0,
    files_failed     INTEGER       NOT NULL DEFAULT 0,
    bytes_total      BIGINT        NOT NULL DEFAULT 0,
    bytes_done       BIGINT        NOT NULL DEFAULT 0,
    current_file     VARCHAR(255)  NOT NULL DEFAULT '',
    error            VARCHAR(500)  NOT NULL DEFAULT '',
    started_by       VARCHAR(64)   NOT NULL DEFAULT '',
    started_at       VARCHAR(27)   NOT NULL,
    updated_at       VARCHAR(27)   NOT NULL,
    finished_at      VARCHAR(27)   NULL
);
CREATE INDEX recording_imports_started ON recording_imports (started_at);

-- The journal of copies in progress: how far the copy of a source file got
-- and the SM3 state at that offset, so a copy interrupted by a crash or a
-- pulled stick resumes where it stopped instead of starting again.
CREATE TABLE recording_copies (
    source_key    VARCHAR(64)   NOT NULL PRIMARY KEY,  -- SM3 of device, relative path, size, mtime
    source_path   VARCHAR(1000) NOT NULL,
    size          BIGINT        NOT NULL,
    mtime         VARCHAR(27)   NOT NULL,
    copied        BIGINT        NOT NULL,              -- bytes in the .part file known to be on disk
    sm3_state     VARCHAR(400)  NOT NULL,              -- hex of the SM3 digest state after copied bytes
    updated_at    VARCHAR(27)   NOT NULL
);

-- Files being uploaded from the console in chunks, resumable by offset.
CREATE TABLE recording_uploads (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    batch         VARCHAR(64)   NOT NULL,              -- the browser's id of the folder being uploaded
    path          VARCHAR(500)  NOT NULL,              -- relative path inside the folder
    size          BIGINT        NOT NULL,
    received      BIGINT        NOT NULL DEFAULT 0,
    status        VARCHAR(12)   NOT NULL,              -- uploading, complete, imported
    created_by    VARCHAR(64)   NOT NULL DEFAULT '',
    created_at    VARCHAR(27)   NOT NULL,
    updated_at    VARCHAR(27)   NOT NULL
);
CREATE UNIQUE INDEX recording_uploads_path ON recording_uploads (batch, path);

-- Home-nursing visits: which nurse served which order when. The home-nursing
-- journey (dispatch, arrival, completion) fills it; the recorder import reads
-- it to attach footage to the order whose visit covers the recording's start.
CREATE TABLE nursing_visits (
    id            VARCHAR(36)   NOT NULL PRIMARY KEY,
    order_id      VARCHAR(36)   NOT NULL,
    nurse_id      VARCHAR(36)   NOT NULL,
    started_at    VARCHAR(27)   NOT NULL,
    ended_at      VARCHAR(27)   NULL,                  -- NULL while the visit goes on
    created_at    VARCHAR(27)   NOT NULL
);
CREATE INDEX nursing_visits_nurse ON nursing_visits (nurse_id, started_at);
CREATE INDEX nursing_visits_order ON nursing_visits (order_id);

-- +goose Down
DROP TABLE nursing_visits;
DROP TABLE recording_uploads;
DROP TABLE recording_copies;
DROP TABLE recording_imports;
DROP TABLE recordings;
DROP TABLE recorder_devices;
