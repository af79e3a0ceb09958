package cloud_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"ihos/booking"
	"ihos/internal/loadtest"
	"ihos/internal/sqldb/sqldbtest"
)

// BenchmarkBookingAtRelease measures slot allocation at the release time
// through the cloud's HTTP API: b.N patients, `clients` at a time, book the
// 100 slots of a schedule that has just been released (the quota per slot
// is set so that every patient gets a unit). Each request is one POST
// /api/booking/bookings: the rule checks on the replicated rows, then one
// write transaction (the conditional counter UPDATE, the booking INSERT,
// the sync outbox entry) committed with synchronous=FULL on SQLite.
//
// It reports bookings/s and the p50/p99 of one booking, and, measured in the
// same run on a database file in the same directory, the raw rate of
// trivial single-row INSERT+COMMIT transactions through the same write path
// (raw-commits/s): on SQLite one booking costs one commit, so that rate is
// the ceiling a committing-per-booking design can reach, and vs-raw is the
// fraction of it achieved (goal ≥ 0.8). Zero oversell is checked after the
// run: the counters, the booking rows and the quota agree.
func BenchmarkBookingAtRelease(b *testing.B) {
	for _, clients := range []int{32, 256} {
		b.Run(fmt.Sprintf("sqlite/clients=%d", clients), func(b *testing.B) { benchBookingAtRelease(b, "", clients) })
		b.Run(fmt.Sprintf("mysql/clients=%d", clients), func(b *testing.B) { benchBookingAtRelease(b, sqldbtest.MySQLDSN(b), clients) })
	}
}

func benchBookingAtRelease(b *testing.B, dsn string, clients int) {
	const slots = 100
	raw := sqldbtest.RawCommitRate(b, filepath.Join(b.TempDir(), "raw.db"))
	r := newBookRig(b, dsn)
	r.seed()
	quota := (b.N + slots - 1) / slots
	r.exec(`UPDATE release_rules SET quota = ?`, quota)
	sched := r.schedule(tomorrow(), "08:00", "16:20", "text", 5)
	b.ResetTimer()
	cpu0 := processCPU()
	res := loadtest.Run(clients, b.N, func(i int) error {
		code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: fmt.Sprintf("%s:%d", sched, i%slots), PatientID: fmt.Sprintf("P%07d", i)}, nil, false)
		if code != 201 {
			return fmt.Errorf("booking %d: %d %s", i, code, msg)
		}
		return nil
	})
	cpu := processCPU() - cpu0
	b.StopTimer()
	if res.FirstErr != nil {
		b.Errorf("%d bookings failed, the first: %v", res.Failed, res.FirstErr)
	}

	// Zero oversell: one more patient per slot is refused, and the counters
	// and the rows agree with what was booked.
	for i := range slots {
		if int64(i) >= int64(b.N) {
			break
		}
		full := (b.N-i+slots-1)/slots >= quota
		code, msg := r.do("POST", "/api/booking/bookings", booking.Request{SlotID: fmt.Sprintf("%s:%d", sched, i), PatientID: fmt.Sprintf("X%03d", i)}, nil, false)
		if full && (code != 409 || msg != "该时段已约满") {
			b.Fatalf("slot %d is full but answered %d %s", i, code, msg)
		}
	}
	var rows, counters, over int
	db := r.app.Node.DB
	db.QueryRow(`SELECT COUNT(*) FROM bookings WHERE schedule_id = ? AND status <> 'cancelled'`, sched).Scan(&rows)
	db.QueryRow(`SELECT COALESCE(SUM(booked), 0) FROM booking_slots WHERE schedule_id = ?`, sched).Scan(&counters)
	db.QueryRow(`SELECT COUNT(*) FROM booking_slots WHERE schedule_id = ? AND booked > ?`, sched, quota).Scan(&over)
	if rows != counters || over != 0 {
		b.Fatalf("oversold: %d booking rows, counters %d, %d slots over quota %d", rows, counters, over, quota)
	}
	if len(res.Latencies) == 0 {
		return
	}
	res.Report(b, "bookings")
	b.ReportMetric(raw, "raw-commits/s")
	b.ReportMetric(res.Rate()/raw, "vs-raw")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(res.Latencies)), "cpu-ms/booking")
}
