package hissim

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"time"
)

// todayPatients is how many demo patients, from P000001 on, have a
// registration every day: a self-service kiosk demo always finds today's
// visits to show and print, whatever day it runs.
const todayPatients = 20

// timeSlots are the clinic's half-hour registration slots.
var timeSlots = []string{
	"08:00-08:30", "08:30-09:00", "09:00-09:30", "09:30-10:00", "10:00-10:30", "10:30-11:00", "11:00-11:30",
	"13:30-14:00", "14:00-14:30", "14:30-15:00", "15:00-15:30", "15:30-16:00", "16:00-16:30", "16:30-17:00",
}

// perSlot is how many numbers a doctor gives out in one slot: the queue
// number of the k-th patient (from 0) of slot i is i*perSlot+k+1.
const perSlot = 4

// Registration fees (挂号费 with 医事服务费): the first doctor of each
// department is a chief physician, the others attending.
const (
	chiefFeeFen     = 5000
	attendingFeeFen = 3000
)

// ensureToday makes today's demo registrations once a day (Beijing time):
// at start, and at the first visit query after midnight.
func (s *Sim) ensureToday(ctx context.Context) error {
	now := time.Now()
	day := now.In(beijing).Format("20060102")
	s.todayMu.Lock()
	defer s.todayMu.Unlock()
	if s.today == day {
		return nil
	}
	if err := registerToday(ctx, s.db, now); err != nil {
		return fmt.Errorf("today's demo registrations: %w", err)
	}
	s.today = day
	return nil
}

// registerToday gives each of the first todayPatients demo patients a
// registration on now's day (Beijing), unless that day's are already made.
// What each patient gets depends only on the patient and the data already
// there: their latest department (or one in turn when they have none), a
// doctor of it, a time slot and its queue number, the fee. One in three
// (from P000004) has been seen already and owes the fee of a blood test the
// doctor ordered; P000020 cancelled theirs.
func registerToday(ctx context.Context, db *sql.DB, now time.Time) error {
	d := now.In(beijing)
	day := d.Format("20060102")
	midnight := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, beijing)
	return inTx(ctx, db, func(tx *sql.Tx) error {
		marker := "today-" + day
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM counters WHERE name = ?`, marker).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES (?, 1)`, marker); err != nil {
			return err
		}
		var lab catalogItem
		lab, _ = scanItem(tx.QueryRowContext(ctx, `SELECT kind, code, name, spec, unit, price_fen, stock, flags, category, active, specimen, manufacturer, panel, report
			FROM catalog WHERE kind = 'LAB' AND name = '血常规(五分类)'`))
		codes := sortedDepartments()
		taken := map[string]int{} // doctor and slot: numbers given
		for i, p := range DemoPatients[:min(todayPatients, len(DemoPatients))] {
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE his_id = ?`, p.HISID).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				continue
			}
			var deptCode string
			err := tx.QueryRowContext(ctx, `SELECT department_code FROM visits WHERE his_id = ? AND visited_at < ? ORDER BY visited_at DESC LIMIT 1`,
				p.HISID, fmtDB(midnight)).Scan(&deptCode)
			if err != nil && err != sql.ErrNoRows {
				return err
			}
			dept, ok := departments[deptCode]
			if !ok {
				dept = departments[codes[i%len(codes)]]
			}
			di := i % len(dept.doctors)
			doc := dept.doctors[di]
			fee := int64(attendingFeeFen)
			if di == 0 {
				fee = chiefFeeFen
			}
			slot := (i*3 + 2) % len(timeSlots)
			k := taken[doc[0]+"/"+timeSlots[slot]]
			taken[doc[0]+"/"+timeSlots[slot]] = k + 1
			queue := padded("", int64(slot*perSlot+k+1), 3)
			var hh, mm int
			fmt.Sscanf(timeSlots[slot], "%d:%d", &hh, &mm)
			at := midnight.Add(time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
			status := "registered"
			switch {
			case p.HISID == "P000020":
				status = "cancelled"
			case i >= 3 && i%3 == 0:
				status = "seen"
			}
			no, err := nextID(ctx, tx, "MZ", 8)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO visits (visit_no, his_id, department_code, department_name, doctor_code, doctor_name, visited_at, queue_no, time_slot, fee_fen, status)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, no, p.HISID, dept.code, dept.name, doc[0], doc[1], fmtDB(at), queue, timeSlots[slot], fee, status); err != nil {
				return err
			}
			if status == "seen" && lab.Code != "" {
				id, err := nextID(ctx, tx, "F", 8)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO fees (fee_id, his_id, visit_no, type, item_code, item_name, quantity, amount_fen, department_code, doctor_code, doctor_name, status, created_at)
					VALUES (?, ?, ?, 'CG', ?, ?, '1', ?, ?, ?, ?, 'unpaid', ?)`,
					id, p.HISID, no, lab.Code, lab.Name, lab.PriceFen, dept.code, doc[0], doc[1], fmtDB(at.Add(10*time.Minute))); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// sortedDepartments lists the department codes in order.
func sortedDepartments() []string { return slices.Sorted(maps.Keys(departments)) }
