package booking_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"ihos/booking"
	"ihos/internal/entities"
	"ihos/internal/loadtest"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

// BenchmarkBook measures the allocation itself, without HTTP: b.N patients,
// 64 at a time, book the 100 just-released slots of a schedule through
// Service.Book, with the sync capture of the cloud in every transaction.
// Beside bookings/s and p99 it reports the raw SQLite commit rate measured
// in the same run in the same directory (trivial INSERT+COMMIT
// transactions, synchronous=FULL) and the ratio: above 1 where group commit
// makes one fsync serve many bookings. cloud's BenchmarkBookingAtRelease is
// the same through the HTTP API.
func BenchmarkBook(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchBook(b, sqldbtest.SQLite(b)) })
	b.Run("mysql", func(b *testing.B) { benchBook(b, sqldbtest.MySQL(b)) })
}

func benchBook(b *testing.B, db *sqldb.DB) {
	const slots, clients = 100, 64
	ctx := context.Background()
	raw := sqldbtest.RawCommitRate(b, filepath.Join(b.TempDir(), "raw.db"))
	f := standard(b, db)
	replica, err := sync.NewReplica(ctx, db, sync.Cloud, "cloud", entities.Registry())
	if err != nil {
		b.Fatal(err)
	}
	f.svc.Capture = func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
		return replica.Capture(ctx, tx, "", refs...)
	}
	quota := (b.N + slots - 1) / slots
	f.rule("", 7, "08:00", quota)
	sched := f.schedule("doc1", "2026-12-03", "08:00", "16:20", "text", 5, 0)
	b.ResetTimer()
	res := loadtest.Run(clients, b.N, func(i int) error {
		_, err := f.svc.Book(ctx, booking.Request{SlotID: slot(sched, i%slots), PatientID: fmt.Sprintf("P%07d", i)})
		return err
	})
	b.StopTimer()
	if res.FirstErr != nil {
		b.Errorf("%d bookings failed, the first: %v", res.Failed, res.FirstErr)
	}
	var rows, counters, over int
	db.QueryRow(`SELECT COUNT(*) FROM bookings WHERE status <> 'cancelled'`).Scan(&rows)
	db.QueryRow(`SELECT COALESCE(SUM(booked), 0) FROM booking_slots`).Scan(&counters)
	db.QueryRow(`SELECT COUNT(*) FROM booking_slots WHERE booked > ?`, quota).Scan(&over)
	if rows != counters || rows != len(res.Latencies) || over != 0 {
		b.Fatalf("oversold: %d rows, counters %d, %d answered, %d slots over quota", rows, counters, len(res.Latencies), over)
	}
	if len(res.Latencies) == 0 {
		return
	}
	res.Report(b, "bookings")
	b.ReportMetric(raw, "raw-commits/s")
	b.ReportMetric(res.Rate()/raw, "vs-raw")
}
