package his_test

import (
	"context"
	"database/sql"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"ihos"
	"ihos/his"
	"ihos/his/hissim"
	"ihos/his/hl7"
	"ihos/his/mllp"
	"ihos/internal/sqldb"
)

// rig is an appliance-side HIS link (SQLite, queue, HL7 adapter, result
// listener) talking to the simulator over real sockets.
type rig struct {
	t        testing.TB
	db       *sqldb.DB
	sim      *hissim.Sim
	simDir   string
	simAddr  string
	svc      *his.Service
	queue    *his.Queue
	adapter  *his.HL7
	listen   string
	cancel   context.CancelFunc
	listener *his.Listener
}

func newRig(t testing.TB) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "appliance.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &rig{t: t, db: db, simDir: t.TempDir()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.listen = ln.Addr().String()
	r.startSim("127.0.0.1:0")
	rec := &his.Recorder{DB: db}
	r.adapter = his.NewHL7(r.simAddr)
	r.adapter.ReplyTimeout = 5 * time.Second
	r.adapter.Observe = rec.Observe
	r.adapter.Start()
	r.queue = &his.Queue{DB: db, HIS: r.adapter}
	r.svc = &his.Service{DB: db, HIS: r.adapter, Queue: r.queue, Hospital: "h1"}
	r.queue.OnAnswer = r.svc.OnAnswer
	r.listener = &his.Listener{Service: r.svc, Observe: rec.Observe}
	go r.listener.Serve(ln)
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	go rec.Run(rctx)
	go r.queue.Run(rctx)
	t.Cleanup(func() {
		cancel()
		r.listener.Close()
		r.adapter.Close()
		r.sim.Close()
	})
	return r
}

func (r *rig) startSim(addr string) {
	r.t.Helper()
	sim, err := hissim.Start(context.Background(), hissim.Config{DataDir: r.simDir, MLLPAddr: addr, HTTPAddr: "127.0.0.1:0",
		ResultsTo: r.listen, ResultDelay: 200 * time.Millisecond})
	if err != nil {
		r.t.Fatal(err)
	}
	r.sim, r.simAddr = sim, sim.MLLPAddr()
}

func (r *rig) count(q string, args ...any) int {
	var n int
	if err := r.db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *rig) firstCode(kind, flagLike string) string {
	var code string
	q := `SELECT code FROM his_catalog WHERE kind = ? AND enabled = 1 AND flags = '' ORDER BY code LIMIT 1`
	args := []any{kind}
	if flagLike != "" {
		q = `SELECT code FROM his_catalog WHERE kind = ? AND flags LIKE ? ORDER BY code LIMIT 1`
		args = append(args, "%"+flagLike+"%")
	}
	if err := r.db.QueryRowContext(context.Background(), q, args...).Scan(&code); err != nil {
		r.t.Fatalf("no %s item (flags %q) in the catalogue: %v", kind, flagLike, err)
	}
	return code
}

func demoPatient(i int) ihos.HISPatient {
	p := hissim.DemoPatients[i]
	return ihos.HISPatient{HISID: p.HISID, Name: p.Name, IDNumber: p.IDNumber}
}

// The catalogue arrives in full, an order reaches the simulator and is
// accepted with the HIS's filler number, and the simulator's result comes
// back over MLLP and is stored with its observations.
func TestOrderAndResultRoundTrip(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	reps, err := r.svc.RefreshCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, rep := range reps {
		got[rep.Kind] = rep.Total
	}
	if got[ihos.CatalogDrug] < 450 || got[ihos.CatalogExam] < 90 || got[ihos.CatalogLab] < 90 {
		t.Fatalf("catalogue sizes %v, want about 500 drugs, 100 exams, 100 labs", got)
	}
	// A second refresh finds nothing changed.
	reps, err = r.svc.RefreshCatalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range reps {
		if rep.Added+rep.Changed+rep.Removed != 0 {
			t.Fatalf("second refresh changed %+v", rep)
		}
	}

	orders, err := r.svc.PlaceOrder(ctx, his.OrderRequest{Kind: ihos.CatalogLab, Patient: demoPatient(0), VisitNo: ihos.NewID(),
		DepartmentCode: "0101", DepartmentName: "心血管内科", DoctorCode: "D001", DoctorName: "李医生",
		Items: []ihos.HISOrderLine{{Code: r.firstCode(ihos.CatalogLab, "")}}})
	if err != nil {
		t.Fatal(err)
	}
	id := orders[0].ID
	waitFor(t, 10*time.Second, "the result stored", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_results WHERE order_id = ?`, id) == 1
	})
	var status, filler, obs string
	r.db.QueryRowContext(ctx, `SELECT status, filler_order_no FROM his_orders WHERE id = ?`, id).Scan(&status, &filler)
	r.db.QueryRowContext(ctx, `SELECT observations FROM his_results WHERE order_id = ?`, id).Scan(&obs)
	if status != his.OrderCompleted || filler == "" || len(obs) < 20 {
		t.Fatalf("order status %q filler %q observations %s", status, filler, obs)
	}
	recv := r.sim.Received("OML^O21")
	if len(recv) != 1 || !slices.Contains(recv[0].Placer, id) {
		t.Fatalf("simulator received %+v", recv)
	}
	waitFor(t, 5*time.Second, "both exchanges in the message log", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_messages WHERE type IN ('OML^O21', 'ORU^R01')`) == 2
	})
}

// Narcotic and psychotropic drugs cannot be prescribed online.
func TestNarcoticRefused(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.RefreshCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{ihos.FlagNarcotic, ihos.FlagPsychotropic2} {
		_, err := r.svc.PlaceOrder(ctx, his.OrderRequest{Kind: ihos.CatalogDrug, Patient: demoPatient(0),
			Items: []ihos.HISOrderLine{{Code: r.firstCode(ihos.CatalogDrug, flag), Quantity: "1"}}})
		if ihos.ErrorCode(err) != ihos.EInvalid {
			t.Fatalf("%s drug: err = %v, want invalid", flag, err)
		}
		t.Logf("%s: %v", flag, err.(*ihos.Error).Fields)
	}
	if n := r.count(`SELECT COUNT(*) FROM his_outbox`); n != 0 {
		t.Fatalf("%d messages queued for refused orders", n)
	}
}

// The simulator stopped, 1,000 orders queued, the simulator restarted: all
// 1,000 arrive exactly once and in order per patient.
func TestOutageThousandOrders(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.RefreshCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	code := r.firstCode(ihos.CatalogDrug, "")
	addr := r.simAddr
	r.sim.Close()

	const n, patients = 1000, 10
	want := map[string][]string{} // patient → control ids in order
	for i := range n {
		p := demoPatient(i % patients)
		if _, err := r.svc.PlaceOrder(ctx, his.OrderRequest{Kind: ihos.CatalogDrug, Patient: p,
			Items: []ihos.HISOrderLine{{Code: code, Quantity: "1", Frequency: "每日三次", Route: "口服"}}}); err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := r.db.QueryContext(ctx, `SELECT id, lane FROM his_outbox ORDER BY seq`)
	for rows.Next() {
		var id, lane string
		rows.Scan(&id, &lane)
		want[lane] = append(want[lane], id)
	}
	rows.Close()
	st, err := r.queue.Status(ctx)
	if err != nil || st.Pending != n {
		t.Fatalf("status %+v, %v; want %d pending", st, err, n)
	}
	waitFor(t, 10*time.Second, "the queue to notice the outage", func() bool {
		st, _ := r.queue.Status(ctx)
		return st.LastError != ""
	})

	r.startSim(addr)
	start := time.Now()
	waitFor(t, 90*time.Second, "the queue to drain", func() bool {
		st, _ := r.queue.Status(ctx)
		return st.Pending == 0
	})
	t.Logf("1,000 queued orders delivered %v after the simulator came back", time.Since(start).Round(time.Millisecond))
	got := map[string][]string{}
	seen := map[string]bool{}
	for _, m := range r.sim.Received("OMP^O09") {
		if m.Duplicate {
			continue
		}
		if seen[m.ControlID] {
			t.Fatalf("control id %s acted on twice", m.ControlID)
		}
		seen[m.ControlID] = true
		got[m.PatientHISID] = append(got[m.PatientHISID], m.ControlID)
	}
	if len(seen) != n {
		t.Fatalf("simulator acted on %d messages, want %d", len(seen), n)
	}
	for lane, ids := range want {
		if !slices.Equal(got[lane], ids) {
			t.Fatalf("patient %s: order differs (%d sent, %d received)", lane, len(ids), len(got[lane]))
		}
	}
	if c := r.count(`SELECT COUNT(*) FROM his_orders WHERE status = 'accepted'`); c != n {
		t.Fatalf("%d orders accepted, want %d", c, n)
	}
}

// An AE answer fails the message and holds its patient's later messages;
// other patients go on. Re-sending after the HIS recovers releases the lane.
func TestRefusedMessageHoldsItsLane(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.RefreshCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	code := r.firstCode(ihos.CatalogDrug, "")
	order := func(p int) string {
		o, err := r.svc.PlaceOrder(ctx, his.OrderRequest{Kind: ihos.CatalogDrug, Patient: demoPatient(p), Items: []ihos.HISOrderLine{{Code: code, Quantity: "2"}}})
		if err != nil {
			t.Fatal(err)
		}
		return o[0].MessageID
	}
	r.sim.SetMode(hissim.Mode{Name: "error", AckCode: "AE", Text: "药品库存不足"})
	first := order(0)
	waitFor(t, 10*time.Second, "the first message to fail", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_outbox WHERE id = ? AND status = 'failed'`, first) == 1
	})
	r.sim.SetMode(hissim.Mode{Name: "up"})
	second, other := order(0), order(1)
	waitFor(t, 10*time.Second, "the other patient's message", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_outbox WHERE id = ? AND status = 'sent'`, other) == 1
	})
	if r.count(`SELECT COUNT(*) FROM his_outbox WHERE id = ? AND status = 'pending'`, second) != 1 {
		t.Fatal("a message behind a failed one of the same patient was sent")
	}
	st, _ := r.queue.Status(ctx)
	if st.Failed != 1 || st.Alarm == "" {
		t.Fatalf("status %+v: want one failed and an alarm", st)
	}
	var text, orderStatus string
	r.db.QueryRowContext(ctx, `SELECT ack_text FROM his_outbox WHERE id = ?`, first).Scan(&text)
	r.db.QueryRowContext(ctx, `SELECT status FROM his_orders WHERE message_id = ?`, first).Scan(&orderStatus)
	if text != "药品库存不足" || orderStatus != his.OrderRefused {
		t.Fatalf("ack text %q, order %q", text, orderStatus)
	}
	if err := r.queue.Cancel(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the held message after the cancel", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_outbox WHERE id = ? AND status = 'sent'`, second) == 1
	})
	if err := r.queue.Resend(ctx, second); ihos.ErrorCode(err) != ihos.EConflict {
		t.Fatalf("resend of a sent message: %v", err)
	}
	if r.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'cancel' AND resource = 'his_outbox'`) != 1 {
		t.Fatal("the cancel was not audited")
	}
}

// Queries: the patient index, the follow-up check and unpaid fees.
func TestQueries(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	p := hissim.DemoPatients[0]
	found, err := r.adapter.FindPatients(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: p.IDNumber})
	if err != nil || len(found) != 1 || found[0].HISID != p.HISID || found[0].Name != p.Name {
		t.Fatalf("find %s: %+v, %v", p.IDNumber, found, err)
	}
	none, err := r.adapter.FindPatients(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: "110101199001010000"})
	if err != nil || len(none) != 0 {
		t.Fatalf("find unknown: %+v, %v", none, err)
	}
	e, err := r.svc.CheckFollowUp(ctx, p.HISID, []string{"I10"}, 180*24*time.Hour)
	if err != nil || !e.Eligible {
		t.Fatalf("follow-up of %s for I10: %+v, %v", p.Name, e, err)
	}
	e, err = r.svc.CheckFollowUp(ctx, hissim.DemoPatients[2].HISID, nil, 180*24*time.Hour)
	if err != nil || e.Eligible || e.Reason == "" {
		t.Fatalf("follow-up of a patient never diagnosed: %+v, %v", e, err)
	}
	fees, err := r.adapter.UnpaidFees(ctx, p.HISID)
	if err != nil || len(fees) == 0 || fees[0].AmountFen <= 0 {
		t.Fatalf("unpaid fees: %+v, %v", fees, err)
	}
	r.sim.SetMode(hissim.Mode{Name: "down"})
	if _, err := r.adapter.FindPatients(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: p.IDNumber}); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("query while the HIS is down: %v, want unavailable", err)
	}
}

// A result sent twice (same control id) is stored once; a result for an
// unknown order is answered AE.
func TestResultResendStoredOnce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := ihos.FormatTime(time.Now())
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO his_orders (id, hospital_id, kind, patient_his_id, code, name, message_id, status, created_at, updated_at)
			VALUES ('o1', 'h1', 'LAB', 'P000001', 'L001', '血常规', 'm1', 'accepted', ?, ?)`, now, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &mllp.Client{Addr: r.listen}
	defer c.Close()
	oru := func(control, placer string) *hl7.Message {
		m := hl7.New("ORU", "R01", "ORU_R01", control)
		m.Set("PID-3-1", "P000001")
		m.Set("PID-3-5", "PI")
		m.Set("ORC-1", "RE")
		m.Set("ORC-2", placer)
		m.Set("ORC-5", "CM")
		m.Set("OBR-2", placer)
		m.Set("OBR-4-1", "L001")
		m.Set("OBR-4-2", "血常规")
		m.Set("OBR-25", "F")
		m.Set("OBX-2", "NM")
		m.Set("OBX-3-1", "WBC")
		m.Set("OBX-3-2", "白细胞计数")
		m.Set("OBX-5", "6.2")
		return m
	}
	for i := range 2 {
		reply, err := c.Send(ctx, oru("R1", "o1"))
		if err != nil || reply.Get("MSA-1") != "AA" {
			t.Fatalf("send %d: %v %v", i, reply, err)
		}
	}
	var version int
	r.db.QueryRowContext(ctx, `SELECT version FROM his_results WHERE order_id = 'o1'`).Scan(&version)
	if version != 1 {
		t.Fatalf("result version %d after a resend, want 1", version)
	}
	reply, err := c.Send(ctx, oru("R2", "nope"))
	if err != nil || reply.Get("MSA-1") != "AE" {
		t.Fatalf("unknown order: %v %v", reply, err)
	}

}

// Messages waiting behind a refused one (more than a sending window's worth)
// do not hold up other patients.
func TestBlockedLaneDoesNotStarveOthers(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.RefreshCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	code := r.firstCode(ihos.CatalogDrug, "")
	place := func(p int) string {
		o, err := r.svc.PlaceOrder(ctx, his.OrderRequest{Kind: ihos.CatalogDrug, Patient: demoPatient(p), Items: []ihos.HISOrderLine{{Code: code, Quantity: "1"}}})
		if err != nil {
			t.Fatal(err)
		}
		return o[0].MessageID
	}
	r.sim.SetMode(hissim.Mode{Name: "error", AckCode: "AE", Text: "停诊"})
	first := place(0)
	waitFor(t, 10*time.Second, "the refusal", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_outbox WHERE id = ? AND status = 'failed'`, first) == 1
	})
	r.sim.SetMode(hissim.Mode{Name: "up"})
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		for range 600 {
			m := ihos.HISMessage{Event: ihos.HISPharmacyOrder, Data: ihos.HISMessageData{Patient: demoPatient(0),
				Orders: []ihos.HISOrderLine{{PlacerOrderNo: ihos.NewID(), Code: code, Quantity: "1"}}}}
			if err := r.queue.Enqueue(ctx, tx, demoPatient(0).HISID, &m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	other := place(1)
	waitFor(t, 10*time.Second, "the other patient's message", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_outbox WHERE id = ? AND status = 'sent'`, other) == 1
	})
	if n := r.count(`SELECT COUNT(*) FROM his_outbox WHERE lane = ? AND status = 'pending'`, demoPatient(0).HISID); n != 600 {
		t.Fatalf("%d of the held patient's messages pending, want 600", n)
	}
}
