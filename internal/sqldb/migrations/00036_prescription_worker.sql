-- The prescription worker's index (issue 8, package prescriptions): every
-- pass looks for approved prescriptions whose payment is paid and for paid
-- ones not yet acknowledged by the HIS, by (status, updated_at).

-- +goose Up
CREATE INDEX prescriptions_status ON prescriptions (status, updated_at);

-- +goose Down
-- Nothing to do: the index goes with the table when 00028 is rolled back
-- (DROP INDEX is spelt differently by SQLite and MySQL).
