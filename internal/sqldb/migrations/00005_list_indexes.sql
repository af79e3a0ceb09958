-- Indexes for the console's staff list at hospital-group scale (100,000 staff).
-- A list filters on deleted_at IS NULL (and usually a department), counts the
-- matches, and pages in job_no order with id breaking ties. The indexes of 00001
-- do not hold deleted_at, so counting a department's staff, or skipping to its
-- page 100, read every matching row from the table just to see it was live.
-- Each index here leads with the filter columns and deleted_at (both engines
-- use "deleted_at IS NULL" as an index equality) and goes on with the sort key
-- and id, so the count and the OFFSET are answered from the index alone and
-- only the page's own rows are read. The department index and the unfiltered
-- one also carry the columns the list's search (q) looks at - name, license_no
-- and the phone's blind index - so a search within a department reads no table
-- rows either.
-- The shorter indexes of 00001 stay: DROP INDEX is spelt differently by SQLite
-- and MySQL.

-- +goose Up
CREATE INDEX staff_live_department ON staff (department_id, deleted_at, job_no, id, name, license_no, phone_bidx);
CREATE INDEX staff_live_department_kind ON staff (department_id, kind, deleted_at, job_no, id);
CREATE INDEX staff_live_institution ON staff (institution_id, deleted_at, job_no, id);
CREATE INDEX staff_live_kind ON staff (kind, deleted_at, job_no, id);
CREATE INDEX staff_live ON staff (deleted_at, job_no, id, name, license_no, phone_bidx);

-- +goose Down
-- Nothing to do: the indexes go with the table when 00001 is rolled back.
