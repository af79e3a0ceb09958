-- The booking worker's index (issue 8, package booking): every pass looks
-- for bookings in one status changed within a window (paid ones to book,
-- booked ones without a visit, awaiting ones past their payment window,
-- cancelled ones to settle), so it reads them by (status, updated_at)
-- instead of scanning every booking each second.

-- +goose Up
CREATE INDEX bookings_status ON bookings (status, updated_at);

-- +goose Down
-- Nothing to do: the index goes with the table when 00024 is rolled back
-- (DROP INDEX is spelt differently by SQLite and MySQL).
