-- The online follow-up visit (issue 8): what the patient tells at booking and
-- the follow-up-only rule per department.
--
-- bookings.condition_desc / past_history: the condition (病情描述) and the past
-- history or earlier records (既往病史/就诊记录) the patient gives when booking;
-- the visit opens with them as the patient's first message. account_id is the
-- patient account that made the booking ('' when staff or a tool booked):
-- the guardian rule for children under 6 asks whether that account's holder
-- is the child's guardian.
--
-- departments.online_follow_up_only: online visits of the department are
-- follow-up visits only (DESIGN.md §7), checked against the HIS at booking.
-- On by default; a hospital turns it off for a pilot department on the
-- console.

-- +goose Up
ALTER TABLE bookings ADD COLUMN account_id VARCHAR(36) NOT NULL DEFAULT '';
ALTER TABLE bookings ADD COLUMN condition_desc TEXT NULL;
ALTER TABLE bookings ADD COLUMN past_history TEXT NULL;
ALTER TABLE departments ADD COLUMN online_follow_up_only INTEGER NOT NULL DEFAULT 1;

-- +goose Down
ALTER TABLE departments DROP COLUMN online_follow_up_only;
ALTER TABLE bookings DROP COLUMN past_history;
ALTER TABLE bookings DROP COLUMN condition_desc;
ALTER TABLE bookings DROP COLUMN account_id;
