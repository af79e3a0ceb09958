-- Ratings of online visits (issue 8, package ratings): the patient account
-- of an ended visit rates its doctor once (score 1–5, a comment, tags from a
-- fixed list). ratings is cloud-owned and replicates to the appliance (its
-- account_id stays in the cloud); a rating is never changed or deleted.
--
-- doctor_stats is the cloud's aggregate per doctor for the public doctor list
-- (average rating, number of ratings, ended visits), so listing and sorting
-- doctors reads one row per doctor instead of counting ratings and visits at
-- every request. The rating's own transaction adds to rating_count and
-- score_sum; an ended visit is counted once, when its change enters the
-- cloud's change feed (sync.Replica.Follow), doctor_stat_visits remembering
-- which visits were counted. Both stay in the cloud. The backfill below counts
-- the visits that ended before this migration.

-- +goose Up
CREATE TABLE ratings (
    id           VARCHAR(36)  NOT NULL PRIMARY KEY,
    hospital_id  VARCHAR(36)  NOT NULL DEFAULT '',
    visit_id     VARCHAR(36)  NOT NULL,
    doctor_id    VARCHAR(36)  NOT NULL,
    patient_id   VARCHAR(36)  NOT NULL,                -- the visit's patient (patients row)
    account_id   VARCHAR(36)  NOT NULL DEFAULT '',     -- the patient account that rated (cloud only)
    score        INTEGER      NOT NULL,
    comment      VARCHAR(500) NOT NULL DEFAULT '',
    tags         VARCHAR(500) NOT NULL DEFAULT '[]',   -- JSON array of tags from the fixed list
    version      BIGINT       NOT NULL DEFAULT 1,
    created_at   VARCHAR(27)  NOT NULL,
    updated_at   VARCHAR(27)  NOT NULL,
    deleted_at   VARCHAR(27)  NULL,
    CONSTRAINT ratings_score CHECK (score BETWEEN 1 AND 5)
);
CREATE UNIQUE INDEX ratings_visit ON ratings (visit_id);
CREATE INDEX ratings_doctor ON ratings (doctor_id, created_at);
CREATE INDEX ratings_hospital ON ratings (hospital_id, created_at);

CREATE TABLE doctor_stats (
    doctor_id     VARCHAR(36)  NOT NULL PRIMARY KEY,
    rating_count  BIGINT       NOT NULL DEFAULT 0,
    score_sum     BIGINT       NOT NULL DEFAULT 0,
    visit_count   BIGINT       NOT NULL DEFAULT 0,     -- ended visits
    updated_at    VARCHAR(27)  NOT NULL
);

CREATE TABLE doctor_stat_visits (
    visit_id    VARCHAR(36)  NOT NULL PRIMARY KEY,
    doctor_id   VARCHAR(36)  NOT NULL,
    counted_at  VARCHAR(27)  NOT NULL
);

INSERT INTO doctor_stat_visits (visit_id, doctor_id, counted_at)
    SELECT id, doctor_id, COALESCE(ended_at, updated_at) FROM visits WHERE status = 'ended' AND deleted_at IS NULL;
INSERT INTO doctor_stats (doctor_id, rating_count, score_sum, visit_count, updated_at)
    SELECT doctor_id, 0, 0, COUNT(*), MAX(counted_at) FROM doctor_stat_visits GROUP BY doctor_id;

-- +goose Down
DROP TABLE doctor_stat_visits;
DROP TABLE doctor_stats;
DROP TABLE ratings;
