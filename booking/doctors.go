package booking

import (
	"context"
	"math"
	"strings"
	"time"

	"ihos"
	"ihos/internal/masterdata"
	"ihos/internal/sqldb"
)

// slotsOf returns the slots of schedules as a patient sees them now. The
// schedules must be of doctors of one department of one hospital (one rule).
func (s *Service) slotsOf(ctx context.Context, rule Rule, scheds []*schedule) ([]Slot, error) {
	if len(scheds) == 0 {
		return nil, nil
	}
	ids := make([]any, len(scheds))
	for i, sc := range scheds {
		ids[i] = sc.ID
	}
	booked := map[string]int{}
	rows, err := s.DB.QueryContext(ctx, `SELECT id, booked FROM booking_slots WHERE schedule_id IN (`+placeholders(len(ids))+`)`, ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		booked[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	var out []Slot
	for _, sc := range scheds {
		release := rule.releaseAt(sc.Date)
		for i, sp := range sc.spans() {
			sl := Slot{ID: slotID(sc.ID, i), ScheduleID: sc.ID, StaffID: sc.StaffID, VisitType: sc.VisitType,
				VisitTypeLabel: masterdata.VisitTypeLabels[sc.VisitType], StartAt: sp.start, EndAt: sp.end, Label: slotLabel(sp),
				Quota: rule.Quota, Booked: booked[slotID(sc.ID, i)], ReleaseAt: release}
			sl.Remaining = max(0, sl.Quota-sl.Booked)
			switch {
			case !now.Before(sp.start):
				sl.Status, sl.Message = SlotPast, msgPast
			case now.Before(release):
				sl.Status, sl.Message = SlotNotReleased, releaseMessage(release)
			case sl.Remaining == 0:
				sl.Status, sl.Message = SlotFull, msgFull
			default:
				sl.Status = SlotAvailable
			}
			out = append(out, sl)
		}
	}
	return out, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// schedules reads the enabled schedules of doctors from date on (through
// until, if not empty), in time order.
func (s *Service) schedules(ctx context.Context, staff []string, from, until string) ([]*schedule, error) {
	if len(staff) == 0 {
		return nil, nil
	}
	args := make([]any, 0, len(staff)+2)
	for _, id := range staff {
		args = append(args, id)
	}
	q := `SELECT ` + scheduleCols + ` FROM online_schedules WHERE staff_id IN (` + placeholders(len(staff)) + `)
		AND enabled = 1 AND deleted_at IS NULL AND visit_date >= ?`
	args = append(args, from)
	if until != "" {
		q += ` AND visit_date <= ?`
		args = append(args, until)
	}
	rows, err := s.DB.QueryContext(ctx, q+` ORDER BY visit_date, start_time LIMIT 1000`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*schedule
	for rows.Next() {
		sc, err := scanSchedule(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, rows.Err()
}

// Slots returns a doctor's slots on date (YYYY-MM-DD), every status
// included, so the page can show when the unreleased ones open.
func (s *Service) Slots(ctx context.Context, staffID, date string) ([]Slot, error) {
	if _, err := time.Parse(time.DateOnly, date); err != nil || len(date) != 10 {
		return nil, ihos.Invalid(map[string]string{"date": "日期格式应为 2026-12-01"})
	}
	doc, err := s.loadDoctor(ctx, staffID)
	if err != nil {
		return nil, err
	}
	if doc == nil || !doc.bookable() {
		return nil, ihos.Errorf(ihos.ENotFound, msgNotOnline)
	}
	scheds, err := s.schedules(ctx, []string{staffID}, date, date)
	if err != nil {
		return nil, err
	}
	rule, err := s.rule(ctx, doc.HospitalID, doc.DepartmentID)
	if err != nil {
		return nil, err
	}
	out, err := s.slotsOf(ctx, rule, scheds)
	if out == nil {
		out = []Slot{}
	}
	return out, err
}

// DoctorQuery selects doctors for the public list.
type DoctorQuery struct {
	HospitalID string // optional
	Department string // a department id or code
	Title      string
	Q          string // a substring of the name or the expertise
	// Sort is "" (the hospital's order), "rating" (the best average first,
	// then the most rated), "volume" (the most ended visits first) or
	// "consultations" (the most bookings first).
	Sort     string
	Page     int
	PageSize int // default 20, at most 50
}

// DoctorPage is one page of the public doctor list.
type DoctorPage struct {
	Items    []*ListedDoctor `json:"items"`
	Total    int             `json:"total"`
	Page     int             `json:"page"`
	PageSize int             `json:"page_size"`
}

// ListedDoctor is a doctor in the public list and on their homepage: the
// doctor with their average rating (Doctor.Rating), how many ratings it
// averages, and how many online visits they have ended.
type ListedDoctor struct {
	*Doctor
	RatingCount int64 `json:"rating_count"`
	VisitCount  int64 `json:"visit_count"`
}

// statsFrom joins each doctor's aggregate, kept by package ratings
// (doctor_stats: one row per doctor, updated by the rating's transaction and
// as visits end), so listing and sorting by rating or volume reads one row
// per doctor rather than counting ratings and visits at every request.
const statsFrom = ` LEFT JOIN doctor_stats ds ON ds.doctor_id = s.id`

// statsCols are the aggregate's columns, 0 for a doctor without a row.
const statsCols = `, COALESCE(ds.rating_count, 0), COALESCE(ds.score_sum, 0), COALESCE(ds.visit_count, 0)`

// average is the mean score rounded to one decimal, as package ratings
// shows it.
func average(sum, count int64) float64 {
	if count <= 0 {
		return 0
	}
	return math.Round(float64(sum)*10/float64(count)) / 10
}

// nextSlots is how many free slots the list shows per doctor.
const nextSlots = 3

// Doctors lists the doctors patients may book: enabled, opened for internet
// diagnosis and accepting, in enabled departments; each with their fees and
// next free slots.
func (s *Service) Doctors(ctx context.Context, q DoctorQuery) (*DoctorPage, error) {
	if q.PageSize <= 0 {
		q.PageSize = 20
	}
	q.PageSize = min(q.PageSize, 50)
	q.Page = max(q.Page, 1)
	where := ` WHERE s.deleted_at IS NULL AND s.enabled = 1 AND s.online = 1 AND s.kind = ? AND COALESCE(p.accepting, 1) = 1
		AND d.id IS NOT NULL AND d.enabled = 1`
	args := []any{ihos.StaffDoctor}
	if q.HospitalID != "" {
		where += ` AND s.hospital_id = ?`
		args = append(args, q.HospitalID)
	}
	if q.Department != "" {
		where += ` AND (d.id = ? OR d.code = ?)`
		args = append(args, q.Department, q.Department)
	}
	if q.Title != "" {
		where += ` AND s.title = ?`
		args = append(args, q.Title)
	}
	if q.Q != "" {
		like := sqldb.Contains(q.Q)
		where += ` AND (s.name LIKE ?` + sqldb.Escape + ` OR s.specialty LIKE ?` + sqldb.Escape + ` OR p.specialty LIKE ?` + sqldb.Escape + `)`
		args = append(args, like, like, like)
	}
	page := &DoctorPage{Items: []*ListedDoctor{}, Page: q.Page, PageSize: q.PageSize}
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*)`+doctorFrom+where, args...).Scan(&page.Total); err != nil {
		return nil, err
	}
	consultations := `(SELECT COUNT(*) FROM bookings b WHERE b.staff_id = s.id AND b.status <> '` + StatusCancelled + `')`
	order := ` ORDER BY d.sort_order, s.job_no, s.id`
	switch q.Sort {
	case "consultations":
		order = ` ORDER BY ` + consultations + ` DESC, d.sort_order, s.job_no, s.id`
	case "rating":
		// The average as a fraction compares the same on both engines; a
		// doctor nobody rated yet comes after every rated one.
		order = ` ORDER BY CASE WHEN COALESCE(ds.rating_count, 0) = 0 THEN 0 ELSE 1 END DESC,
			CASE WHEN COALESCE(ds.rating_count, 0) = 0 THEN 0 ELSE ds.score_sum * 1.0 / ds.rating_count END DESC,
			COALESCE(ds.rating_count, 0) DESC, d.sort_order, s.job_no, s.id`
	case "volume":
		order = ` ORDER BY COALESCE(ds.visit_count, 0) DESC, d.sort_order, s.job_no, s.id`
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+doctorCols+`, `+consultations+statsCols+doctorFrom+statsFrom+where+order+` LIMIT ? OFFSET ?`,
		append(args, q.PageSize, (q.Page-1)*q.PageSize)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n int
		var sum int64
		l := &ListedDoctor{}
		l.Doctor, err = scanDoctor(scanTail{rows, []any{&n, &l.RatingCount, &sum, &l.VisitCount}})
		if err != nil {
			return nil, err
		}
		l.Consultations, l.Rating = n, average(sum, l.RatingCount)
		l.Intro = "" // the homepage shows it, the list does not
		page.Items = append(page.Items, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	for _, d := range page.Items {
		if err := s.complete(ctx, d.Doctor, nextSlots); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// scanTail scans a doctor row followed by more columns.
type scanTail struct {
	row  interface{ Scan(...any) error }
	tail []any
}

func (t scanTail) Scan(dest ...any) error { return t.row.Scan(append(dest, t.tail...)...) }

// Doctor returns a bookable doctor's homepage data: profile, fees, the
// next free slots, and their rating and volume as in the list.
func (s *Service) Doctor(ctx context.Context, id string) (*ListedDoctor, error) {
	d, err := s.loadDoctor(ctx, id)
	if err != nil {
		return nil, err
	}
	if d == nil || !d.bookable() {
		return nil, ihos.Errorf(ihos.ENotFound, msgNotOnline)
	}
	if err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM bookings WHERE staff_id = ? AND status <> ?`, id, StatusCancelled).Scan(&d.Consultations); err != nil {
		return nil, err
	}
	l := &ListedDoctor{Doctor: d}
	var sum int64
	if err := s.DB.QueryRowContext(ctx, `SELECT COALESCE(SUM(rating_count), 0), COALESCE(SUM(score_sum), 0), COALESCE(SUM(visit_count), 0)
		FROM doctor_stats WHERE doctor_id = ?`, id).Scan(&l.RatingCount, &sum, &l.VisitCount); err != nil {
		return nil, err
	}
	d.Rating = average(sum, l.RatingCount)
	return l, s.complete(ctx, d, 10)
}

// complete adds a doctor's fees and up to n next free slots.
func (s *Service) complete(ctx context.Context, d *Doctor, n int) error {
	fees, err := s.fees(ctx, d.HospitalID, d.ID, d.Title)
	if err != nil {
		return err
	}
	d.Fees, d.NextSlots = fees, []Slot{}
	if d.Fees == nil {
		d.Fees = []Fee{}
	}
	rule, err := s.rule(ctx, d.HospitalID, d.DepartmentID)
	if err != nil {
		return err
	}
	today := s.now().In(ihos.Shanghai).Format(time.DateOnly)
	until := s.now().In(ihos.Shanghai).AddDate(0, 0, rule.DaysAhead).Format(time.DateOnly)
	scheds, err := s.schedules(ctx, []string{d.ID}, today, until)
	if err != nil {
		return err
	}
	var offered []*schedule
	for _, sc := range scheds {
		if _, ok := feeOf(fees, sc.VisitType); ok {
			offered = append(offered, sc)
		}
	}
	slots, err := s.slotsOf(ctx, rule, offered)
	if err != nil {
		return err
	}
	for _, sl := range slots {
		if sl.Status == SlotAvailable && len(d.NextSlots) < n {
			d.NextSlots = append(d.NextSlots, sl)
		}
	}
	return nil
}
