-- Online visits and their messages (issue 8): one row per visit opened from a
-- paid booking, every status change in visit_events (append only), and the
-- visit's messages, numbered per visit. visits, visit_events and
-- visit_messages are cloud-owned and replicate to the appliance (the
-- console's visit records); nothing is ever deleted: a message is immutable,
-- a correction is a new message. visit_attachments (the uploaded images and
-- voice clips, kept under the cloud's data dir) and visit_feed stay in the
-- cloud.

-- +goose Up
CREATE TABLE visits (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    booking_id    VARCHAR(36)  NOT NULL,
    patient_id    VARCHAR(36)  NOT NULL,
    doctor_id     VARCHAR(36)  NOT NULL,
    department_id VARCHAR(36)  NOT NULL DEFAULT '',
    visit_type    VARCHAR(8)   NOT NULL,               -- text (图文), voice (语音), video (视频)
    status        VARCHAR(16)  NOT NULL,               -- waiting, in_progress, ended, cancelled
    booked_at     VARCHAR(27)  NOT NULL,               -- when the booking was made: the queue order
    accepted_at   VARCHAR(27)  NULL,
    ended_at      VARCHAR(27)  NULL,
    last_seq      BIGINT       NOT NULL DEFAULT 0,     -- the newest message's seq (cloud only)
    version       BIGINT       NOT NULL DEFAULT 1,
    created_at    VARCHAR(27)  NOT NULL,
    updated_at    VARCHAR(27)  NOT NULL,
    deleted_at    VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX visits_booking ON visits (booking_id);
CREATE INDEX visits_queue ON visits (doctor_id, status, booked_at);
CREATE INDEX visits_patient ON visits (patient_id, created_at);
CREATE INDEX visits_hospital ON visits (hospital_id, created_at);

CREATE TABLE visit_events (
    id          VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id VARCHAR(36)  NOT NULL DEFAULT '',
    visit_id    VARCHAR(36)  NOT NULL,
    from_status VARCHAR(16)  NOT NULL DEFAULT '',
    to_status   VARCHAR(16)  NOT NULL,
    actor_role  VARCHAR(16)  NOT NULL,                 -- patient, doctor, system
    actor_id    VARCHAR(64)  NOT NULL DEFAULT '',
    reason      VARCHAR(200) NOT NULL DEFAULT '',
    at          VARCHAR(27)  NOT NULL,
    version     BIGINT       NOT NULL DEFAULT 1,
    updated_at  VARCHAR(27)  NOT NULL,
    deleted_at  VARCHAR(27)  NULL
);
CREATE INDEX visit_events_visit ON visit_events (visit_id, at);

CREATE TABLE visit_messages (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    visit_id      VARCHAR(36)  NOT NULL,
    seq           BIGINT       NOT NULL,               -- 1, 2, … per visit
    patient_id    VARCHAR(36)  NOT NULL,               -- the visit's parties, for the per-user feed
    doctor_id     VARCHAR(36)  NOT NULL,
    sender_role   VARCHAR(16)  NOT NULL,               -- patient, doctor, system
    sender_id     VARCHAR(64)  NOT NULL DEFAULT '',
    kind          VARCHAR(8)   NOT NULL,               -- text, image, voice
    event         VARCHAR(16)  NOT NULL DEFAULT '',    -- system messages: opened, accepted, ended, cancelled
    body          TEXT         NULL,
    attachment_id VARCHAR(36)  NOT NULL DEFAULT '',
    feed_seq      BIGINT       NOT NULL DEFAULT 0,     -- commit order across all visits (cloud only; 0 on the appliance)
    created_at    VARCHAR(27)  NOT NULL,
    version       BIGINT       NOT NULL DEFAULT 1,
    updated_at    VARCHAR(27)  NOT NULL,
    deleted_at    VARCHAR(27)  NULL
);
CREATE UNIQUE INDEX visit_messages_seq ON visit_messages (visit_id, seq);
CREATE INDEX visit_messages_patient_feed ON visit_messages (patient_id, feed_seq);
CREATE INDEX visit_messages_doctor_feed ON visit_messages (doctor_id, feed_seq);

CREATE TABLE visit_attachments (
    id            VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id   VARCHAR(36)  NOT NULL DEFAULT '',
    visit_id      VARCHAR(36)  NOT NULL,
    uploader_role VARCHAR(16)  NOT NULL,
    uploader_id   VARCHAR(64)  NOT NULL,
    kind          VARCHAR(8)   NOT NULL,               -- image, voice
    content_type  VARCHAR(64)  NOT NULL,
    size          BIGINT       NOT NULL,
    sm3           VARCHAR(64)  NOT NULL,               -- hex SM3 of the content; also its file name
    created_at    VARCHAR(27)  NOT NULL
);
CREATE INDEX visit_attachments_visit ON visit_attachments (visit_id, created_at);

-- One row: the last feed_seq handed out. The transaction that adds a message
-- holds it until its commit, so feed_seq order is commit order and a reader
-- that has seen feed_seq n has seen everything before it.
CREATE TABLE visit_feed (
    name  VARCHAR(16) NOT NULL PRIMARY KEY,
    value BIGINT      NOT NULL
);
INSERT INTO visit_feed (name, value) VALUES ('feed', 0);

-- +goose Down
DROP TABLE visit_feed;
DROP TABLE visit_attachments;
DROP TABLE visit_messages;
DROP TABLE visit_events;
DROP TABLE visits;
