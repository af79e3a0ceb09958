package printing

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
	"ihos/drivers/transport"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
)

// newService returns a service on a fresh SQLite database with short timings.
func newService(t testing.TB) *Service {
	t.Helper()
	return &Service{DB: sqldbtest.SQLite(t), MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond,
		StatusInterval: 40 * time.Millisecond, RefreshInterval: 50 * time.Millisecond, ConfirmGrace: 100 * time.Millisecond}
}

// run runs s until the test ends.
func run(t testing.TB, s *Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func startSim(t testing.TB) *printersim.Sim {
	t.Helper()
	sim, err := printersim.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// addPrinter inserts an enabled TCP printer at addr.
func addPrinter(t testing.TB, db *sqldb.DB, name, addr string) string {
	t.Helper()
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	err := db.Tx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO printers (id, name, location, transport, address, paper_mm, code_page, enabled, version, created_at, updated_at)
			VALUES (?, ?, '门诊一楼', 'tcp', ?, '80', 'GB18030', 1, 1, ?, ?)`, id, name, addr, now, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ticket is a test ticket whose first and last lines carry n, so a complete
// print can be told from a fragment.
func ticket(n int) []byte {
	p := escpos.New(io.Discard, escpos.Options{})
	p.Init().Line(fmt.Sprintf("SEQ %04d", n)).Align(escpos.Center).Bold(true).Line("挂号凭条").Bold(false).Align(escpos.Left).
		Line("患者：张三  科室：心血管内科").QR(fmt.Sprintf("JOB-%04d", n), 4, escpos.QRLevelM).Line(fmt.Sprintf("END %04d", n)).Feed(2).Cut(false)
	if p.Err() != nil {
		panic(p.Err())
	}
	return append([]byte(nil), p.Bytes()...)
}

// printed returns the sequence numbers of the complete tickets the simulator
// printed, in order, and how many tickets were incomplete.
func printed(sim *printersim.Sim) (seqs []int, fragments int) {
	for _, tk := range sim.Tickets() {
		lines := tk.Lines
		for len(lines) > 0 && lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		if len(lines) < 2 {
			fragments++
			continue
		}
		var a, b int
		_, err1 := fmt.Sscanf(lines[0], "SEQ %d", &a)
		_, err2 := fmt.Sscanf(lines[len(lines)-1], "END %d", &b)
		if err1 != nil || err2 != nil || a != b || len(tk.QRCodes) != 1 {
			fragments++
			continue
		}
		seqs = append(seqs, a)
	}
	return seqs, fragments
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jobStatus(t testing.TB, s *Service, id string) string {
	t.Helper()
	j, err := s.Job(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return j.Status
}

func enqueue(t testing.TB, s *Service, printerID string, n int) Job {
	t.Helper()
	j, err := s.Enqueue(context.Background(), printerID, NewJob{Kind: "registration", Source: "test", PatientRef: "P1", Data: ticket(n)})
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// logo is a raster image for large tickets: 576×n dots, 72 bytes a row.
func logo(rows int) image.Image {
	img := image.NewGray(image.Rect(0, 0, escpos.Width80mm, rows))
	for y := range rows {
		for x := range escpos.Width80mm {
			if (x/8+y/8)%2 == 0 {
				img.Pix[y*img.Stride+x] = 0xFF
			}
		}
	}
	return img
}

// bigTicket is ticket(n) with a raster image of about 58 KB in the middle,
// long enough to be cut in two by a fault.
func bigTicket(n int) []byte {
	p := escpos.New(io.Discard, escpos.Options{})
	p.Init().Line(fmt.Sprintf("SEQ %04d", n)).Image(logo(800)).Line("患者：张三  科室：心血管内科").
		QR(fmt.Sprintf("JOB-%04d", n), 4, escpos.QRLevelM).Line(fmt.Sprintf("END %04d", n)).Feed(2).Cut(false)
	if p.Err() != nil {
		panic(p.Err())
	}
	return append([]byte(nil), p.Bytes()...)
}

// TestExactlyOnceUnderFaults prints 200 jobs, one in five with a large
// image, on a slow printer (1 MiB/s) that goes out of paper, cover-open and
// offline at random moments, in the middle of tickets too, and loses the
// tickets a fault interrupts. Nobody confirms anything: the printer's
// process ID responses settle every job. Every job must come out exactly
// once, in order, and none may be left for a person.
func TestExactlyOnceUnderFaults(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	sim.SetSpeed(1 << 20)
	pid := addPrinter(t, s.DB, "自助机 K01", sim.Addr())
	run(t, s)
	ctx := context.Background()

	const total = 200
	stop := make(chan struct{})
	done := make(chan struct{})
	var faults atomic.Int32
	go func() { // the printer: mostly online, sometimes not
		defer close(done)
		modes := []printersim.Mode{printersim.PaperOut, printersim.CoverOpen, printersim.Offline}
		for {
			select {
			case <-stop:
				sim.SetMode(printersim.Online)
				return
			case <-time.After(time.Duration(20+rand.IntN(300)) * time.Millisecond):
			}
			sim.SetMode(modes[rand.IntN(len(modes))])
			faults.Add(1)
			time.Sleep(time.Duration(10+rand.IntN(80)) * time.Millisecond)
			sim.SetMode(printersim.Online)
		}
	}()

	for n := 1; n <= total; n++ {
		data := ticket(n)
		if n%5 == 0 {
			data = bigTicket(n)
		}
		if _, err := s.Enqueue(ctx, pid, NewJob{Kind: "registration", Title: fmt.Sprintf("T%d", n), Source: "kiosk:K01", Data: data}); err != nil {
			t.Fatal(err)
		}
		if n%10 == 0 {
			time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
		}
	}
	waitFor(t, "all jobs printed", 45*time.Second, func() bool {
		var n int
		s.DB.QueryRow(`SELECT COUNT(*) FROM print_jobs WHERE status = 'printed'`).Scan(&n)
		var title, msg string
		if s.DB.QueryRow(`SELECT title, last_error FROM print_jobs WHERE status = 'unknown'`).Scan(&title, &msg) == nil {
			t.Fatalf("job %s left for a person: %s", title, msg)
		}
		return n == total
	})
	close(stop)
	<-done

	seqs, fragments := printed(sim)
	if len(seqs) != total {
		t.Errorf("printer printed %d complete tickets, want %d", len(seqs), total)
	}
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("ticket %d is job %d: printed out of order or twice (%v…)", i+1, n, seqs[max(0, i-3):min(len(seqs), i+3)])
		}
	}
	if fragments > 0 {
		t.Errorf("%d incomplete tickets", fragments)
	}
	var resent, resentBig int
	s.DB.QueryRow(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN LENGTH(data) > 10000 THEN 1 ELSE 0 END), 0) FROM print_jobs WHERE attempts > 1`).Scan(&resent, &resentBig)
	t.Logf("%d faults; the printer lost %d tickets; %d jobs sent more than once (%d of them large)", faults.Load(), sim.Lost(), resent, resentBig)
	if faults.Load() < 5 || sim.Lost() == 0 {
		t.Errorf("%d faults, %d tickets lost: the test did not exercise anything", faults.Load(), sim.Lost())
	}
	if live := s.Live(pid); live.Confirm != ConfirmSupported || live.ConfirmLabel != "支持打印完成确认" {
		t.Errorf("live %+v", live)
	}
}

// TestFaultHoldsJob: a printer that is out of paper gets nothing; the job
// waits with the reason and prints once paper is back.
func TestFaultHoldsJob(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	pid := addPrinter(t, s.DB, "挂号窗口 3", sim.Addr())
	sim.SetMode(printersim.PaperOut)
	run(t, s)
	j := enqueue(t, s, pid, 1)
	waitFor(t, "缺纸 recorded", 5*time.Second, func() bool {
		j, _ := s.Job(context.Background(), j.ID)
		return j.LastError == "缺纸" && j.Status == StatusQueued
	})
	if live := s.Live(pid); live.State != StatePaperOut || live.Label != "缺纸" {
		t.Errorf("live status %+v", live)
	}
	sim.SetMode(printersim.CoverOpen)
	waitFor(t, "纸仓盖打开 recorded", 5*time.Second, func() bool {
		j, _ := s.Job(context.Background(), j.ID)
		return j.LastError == "纸仓盖打开"
	})
	if len(sim.Tickets()) != 0 {
		t.Fatalf("printed while not ready")
	}
	sim.SetMode(printersim.Online)
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })
	if seqs, _ := printed(sim); len(seqs) != 1 {
		t.Fatalf("tickets %v", seqs)
	}
	j, _ = s.Job(context.Background(), j.ID)
	if j.Attempts != 1 || j.LastError != "" || j.PrintedAt.IsZero() {
		t.Errorf("job %+v", j)
	}
}

// TestCrashRecovery: a job left "printing" by a crash becomes unknown at
// start, holds its lane and is not sent until a person confirms.
func TestCrashRecovery(t *testing.T) {
	for _, wasOut := range []bool{false, true} {
		t.Run(fmt.Sprintf("printed=%v", wasOut), func(t *testing.T) {
			s := newService(t)
			sim := startSim(t)
			pid := addPrinter(t, s.DB, "自助机 K02", sim.Addr())
			a := enqueue(t, s, pid, 1)
			b := enqueue(t, s, pid, 2)
			if _, err := s.DB.Exec(`UPDATE print_jobs SET status = 'printing', attempts = 1 WHERE id = ?`, a.ID); err != nil {
				t.Fatal(err)
			}
			run(t, s)
			waitFor(t, "unknown", 5*time.Second, func() bool { return jobStatus(t, s, a.ID) == StatusUnknown })
			time.Sleep(200 * time.Millisecond) // several worker rounds
			if n := len(sim.Tickets()); n != 0 {
				t.Fatalf("%d tickets printed while the head job is unknown", n)
			}
			if st := jobStatus(t, s, b.ID); st != StatusQueued {
				t.Fatalf("job behind the unknown one is %s", st)
			}
			ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "it01"})
			if err := s.Confirm(ctx, a.ID, wasOut); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "lane done", 5*time.Second, func() bool { return jobStatus(t, s, b.ID) == StatusPrinted })
			want := []int{1, 2}
			if wasOut {
				want = []int{2}
			}
			if seqs, _ := printed(sim); fmt.Sprint(seqs) != fmt.Sprint(want) {
				t.Fatalf("printed %v, want %v", seqs, want)
			}
			if st := jobStatus(t, s, a.ID); st != StatusPrinted {
				t.Fatalf("confirmed job is %s", st)
			}
			var actor, action string
			s.DB.QueryRow(`SELECT actor_name, action FROM audit_log WHERE resource = 'print_jobs' AND record_id = ?`, a.ID).Scan(&actor, &action)
			if actor != "it01" || !strings.HasPrefix(action, "confirm_") {
				t.Errorf("audit: %q %q", actor, action)
			}
			if err := s.Confirm(ctx, a.ID, true); ihos.ErrorCode(err) != ihos.EConflict {
				t.Errorf("second confirm: %v", err)
			}
		})
	}
}

// TestReprint prints one more copy of a printed job, audited.
func TestReprint(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	pid := addPrinter(t, s.DB, "收费窗口 1", sim.Addr())
	run(t, s)
	ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u2", Username: "nurse02"})
	j := enqueue(t, s, pid, 7)
	if _, err := s.Reprint(ctx, j.ID, "console:nurse02"); ihos.ErrorCode(err) != ihos.EConflict && jobStatus(t, s, j.ID) != StatusPrinted {
		t.Errorf("reprint of a queued job: %v", err)
	}
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })
	r, err := s.Reprint(ctx, j.ID, "console:nurse02")
	if err != nil {
		t.Fatal(err)
	}
	if r.ReprintOf != j.ID || r.PatientRef != "P1" || r.Seq <= j.Seq || !strings.HasSuffix(r.Title, "（重印）") {
		t.Errorf("reprint job %+v", r)
	}
	waitFor(t, "reprinted", 5*time.Second, func() bool { return jobStatus(t, s, r.ID) == StatusPrinted })
	if seqs, _ := printed(sim); fmt.Sprint(seqs) != "[7 7]" {
		t.Fatalf("printed %v, want two copies of 7", seqs)
	}
	var n int
	s.DB.QueryRow(`SELECT COUNT(*) FROM audit_log WHERE action = 'reprint' AND record_id = ? AND actor_name = 'nurse02'`, r.ID).Scan(&n)
	if n != 1 {
		t.Errorf("reprint audit entries: %d", n)
	}
	jobs, err := s.PatientJobs(context.Background(), "P1", 10)
	if err != nil || len(jobs) != 2 || jobs[0].ID != r.ID {
		t.Errorf("patient jobs %v %v", jobs, err)
	}
}

// TestTwoPrinters: one printer offline does not hold up another.
func TestTwoPrinters(t *testing.T) {
	s := newService(t)
	down, up := startSim(t), startSim(t)
	pdown := addPrinter(t, s.DB, "A 离线", down.Addr())
	pup := addPrinter(t, s.DB, "B 在线", up.Addr())
	down.SetMode(printersim.Offline)
	run(t, s)
	var downJobs []Job
	for n := 1; n <= 5; n++ {
		downJobs = append(downJobs, enqueue(t, s, pdown, n))
		enqueue(t, s, pup, 100+n)
	}
	waitFor(t, "B printed", 5*time.Second, func() bool {
		var n int
		s.DB.QueryRow(`SELECT COUNT(*) FROM print_jobs WHERE printer_id = ? AND status = 'printed'`, pup).Scan(&n)
		return n == 5
	})
	if seqs, _ := printed(up); fmt.Sprint(seqs) != "[101 102 103 104 105]" {
		t.Fatalf("B printed %v", seqs)
	}
	waitFor(t, "A's reason", 5*time.Second, func() bool {
		j, _ := s.Job(context.Background(), downJobs[0].ID)
		return strings.HasPrefix(j.LastError, "打印机离线")
	})
	if st := s.Live(pdown).State; st != StateOffline {
		t.Errorf("A live state %s", st)
	}
	views, err := s.Printers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range views {
		if v.ID == pdown && v.Queued != 5 || v.ID == pup && (v.Queued != 0 || v.Live.State != StateOnline) {
			t.Errorf("view %+v", v)
		}
	}
	down.SetMode(printersim.Online)
	waitFor(t, "A printed", 10*time.Second, func() bool { seqs, _ := printed(down); return len(seqs) == 5 })
	if seqs, _ := printed(down); fmt.Sprint(seqs) != "[1 2 3 4 5]" {
		t.Fatalf("A printed %v", seqs)
	}
}

// TestCancel: cancelled jobs never print; the lane moves on.
func TestCancel(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	pid := addPrinter(t, s.DB, "自助机 K03", sim.Addr())
	sim.SetMode(printersim.PaperOut)
	run(t, s)
	ctx := context.Background()
	a, b, c := enqueue(t, s, pid, 1), enqueue(t, s, pid, 2), enqueue(t, s, pid, 3)
	for _, j := range []Job{a, b} {
		if err := s.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Cancel(ctx, a.ID); ihos.ErrorCode(err) != ihos.EConflict {
		t.Errorf("cancel twice: %v", err)
	}
	sim.SetMode(printersim.Online)
	waitFor(t, "c printed", 5*time.Second, func() bool { return jobStatus(t, s, c.ID) == StatusPrinted })
	if seqs, _ := printed(sim); fmt.Sprint(seqs) != "[3]" {
		t.Fatalf("printed %v", seqs)
	}
	if err := s.Cancel(ctx, c.ID); ihos.ErrorCode(err) != ihos.EConflict {
		t.Errorf("cancel printed: %v", err)
	}
	if _, err := s.Reprint(ctx, a.ID, "console:x"); err != nil { // a cancelled job can be printed after all
		t.Fatal(err)
	}
}

// TestPrinterChanges: workers follow the printer table; a disabled printer
// takes no jobs, a deleted one's waiting jobs fail.
func TestPrinterChanges(t *testing.T) {
	s := newService(t)
	sim := startSim(t)
	run(t, s)
	pid := addPrinter(t, s.DB, "新打印机", sim.Addr())
	s.Notify()
	j := enqueue(t, s, pid, 1)
	waitFor(t, "printed on a printer added while running", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })

	s.DB.Exec(`UPDATE printers SET enabled = 0 WHERE id = ?`, pid)
	if _, err := s.Enqueue(context.Background(), pid, NewJob{Data: ticket(2)}); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Errorf("enqueue on a disabled printer: %v", err)
	}
	s.DB.Exec(`UPDATE printers SET enabled = 1 WHERE id = ?`, pid)
	sim.SetMode(printersim.Offline)
	s.Notify()
	k := enqueue(t, s, pid, 3)
	s.DB.Exec(`UPDATE printers SET deleted_at = ? WHERE id = ?`, ihos.FormatTime(time.Now()), pid)
	s.Notify()
	waitFor(t, "failed", 5*time.Second, func() bool { return jobStatus(t, s, k.ID) == StatusFailed })
	if _, err := s.Enqueue(context.Background(), pid, NewJob{Data: ticket(4)}); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Errorf("enqueue on a deleted printer: %v", err)
	}
}

// fakeConn is a one-way connection (like the Windows spooler) or one whose
// writes fail after some bytes.
type fakeConn struct {
	mu        sync.Mutex
	got       [][]byte
	failAfter int // >0: the write accepts this many bytes and fails
}

func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failAfter > 0 {
		n := min(c.failAfter, len(p))
		c.failAfter = 0
		return n, ihos.Errorf(ihos.EUnavailable, "与网络打印机的连接中断")
	}
	c.got = append(c.got, append([]byte(nil), p...))
	return len(p), nil
}
func (c *fakeConn) Status(context.Context) (escpos.Status, error) {
	return escpos.Status{}, transport.ErrNoStatus
}
func (c *fakeConn) Close() error { return nil }

// TestOneWayTransport: without status, a job is printed once the transport
// took it; a write cut short sends the whole ticket again.
func TestOneWayTransport(t *testing.T) {
	s := newService(t)
	conn := &fakeConn{failAfter: 10}
	s.Open = func(ctx context.Context, kind, address string) (transport.Conn, error) { return conn, nil }
	pid := addPrinter(t, s.DB, "Windows 队列", "127.0.0.1:1")
	run(t, s)
	j := enqueue(t, s, pid, 1)
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if len(conn.got) != 1 || string(conn.got[0]) != string(ticket(1)) {
		t.Fatalf("writes %d", len(conn.got))
	}
	if j, _ := s.Job(context.Background(), j.ID); j.Attempts != 2 {
		t.Errorf("attempts %d, want 2 (one cut short)", j.Attempts)
	}
	if st := s.Live(pid).State; st != StateNoStatus {
		t.Errorf("live state %s", st)
	}
}

// TestTestPrint queues and prints the test page.
func TestTestPrint(t *testing.T) {
	s := newService(t)
	s.Hospital = "示例市第一人民医院"
	sim := startSim(t)
	pid := addPrinter(t, s.DB, "测试打印机", sim.Addr())
	run(t, s)
	ctx := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u3", Username: "admin"})
	j, err := s.TestPrint(ctx, pid, ActorSource(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if j.Kind != "test" || j.Source != "console:admin" {
		t.Errorf("job %+v", j)
	}
	waitFor(t, "printed", 5*time.Second, func() bool { return jobStatus(t, s, j.ID) == StatusPrinted })
	tks := sim.Tickets()
	if len(tks) != 1 || !strings.Contains(strings.Join(tks[0].Lines, "\n"), "测试打印机") || len(tks[0].QRCodes) == 0 {
		t.Fatalf("test page %+v", tks)
	}
}

func TestEnqueueInvalid(t *testing.T) {
	s := newService(t)
	pid := addPrinter(t, s.DB, "P", "127.0.0.1:1")
	for _, data := range [][]byte{nil, make([]byte, MaxJobBytes+1)} {
		if _, err := s.Enqueue(context.Background(), pid, NewJob{Data: data}); ihos.ErrorCode(err) != ihos.EInvalid {
			t.Errorf("%d bytes: %v", len(data), err)
		}
	}
	if _, err := s.Enqueue(context.Background(), "nope", NewJob{Data: ticket(1)}); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Errorf("unknown printer: %v", err)
	}
	if _, err := s.Job(context.Background(), "nope"); !errors.Is(err, err) || ihos.ErrorCode(err) != ihos.ENotFound {
		t.Errorf("unknown job: %v", err)
	}
}

func TestMain(m *testing.M) {
	// The simulator logs every ticket at Info; keep warnings and errors.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
