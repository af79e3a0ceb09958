package his_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/his"
	"ihos/his/hissim"
)

// The HTTP/JSON adapter against the simulator's web services: the same
// queries, an order accepted with its filler number, and its result polled.
func TestHTTPAdapter(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	h := &his.HTTP{BaseURL: r.sim.HTTPURL()}
	p := hissim.DemoPatients[0]
	found, err := h.FindPatients(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: p.IDNumber})
	if err != nil || len(found) != 1 || found[0].HISID != p.HISID {
		t.Fatalf("find: %+v %v", found, err)
	}
	visits, err := h.VisitHistory(ctx, p.HISID, time.Now().AddDate(0, -6, 0))
	if err != nil || len(visits) != 2 || len(visits[1].Diagnoses) == 0 || visits[0].QueueNo == "" {
		t.Fatalf("visits (today's registration, then the one 30 days ago): %+v %v", visits, err)
	}
	fees, err := h.UnpaidFees(ctx, p.HISID)
	if err != nil || len(fees) == 0 || fees[0].AmountFen != 6700 {
		t.Fatalf("fees: %+v %v", fees, err)
	}
	labs, err := h.Catalog(ctx, ihos.CatalogLab)
	if err != nil || len(labs) < 90 {
		t.Fatalf("labs: %d %v", len(labs), err)
	}
	placer := ihos.NewID()
	ack, err := h.Deliver(ctx, ihos.HISMessage{ID: ihos.NewID(), Event: ihos.HISLabOrder, At: time.Now(), Data: ihos.HISMessageData{
		Patient: ihos.HISPatient{HISID: p.HISID, Name: p.Name}, Orders: []ihos.HISOrderLine{{PlacerOrderNo: placer, Code: labs[0].Code, Name: labs[0].Name}}}})
	if err != nil || ack.Code != ihos.AckAccepted || ack.Filler[placer] == "" {
		t.Fatalf("deliver: %+v %v", ack, err)
	}
	bad, err := h.Deliver(ctx, ihos.HISMessage{ID: ihos.NewID(), Event: ihos.HISLabOrder, Data: ihos.HISMessageData{
		Patient: ihos.HISPatient{HISID: "P999999"}, Orders: []ihos.HISOrderLine{{PlacerOrderNo: ihos.NewID(), Code: labs[0].Code}}}})
	if err != nil || bad.Code != ihos.AckError || bad.Text == "" {
		t.Fatalf("unknown patient: %+v %v", bad, err)
	}
	var results []ihos.HISResult
	waitFor(t, 10*time.Second, "the polled result", func() bool {
		results, _, err = h.PollResults(ctx, 0, 100)
		for _, res := range results {
			if res.PlacerOrderNo == placer {
				return len(res.Observations) > 0 && res.ControlID != ""
			}
		}
		return false
	})
	r.sim.SetMode(hissim.Mode{Name: "down"})
	if _, err := h.FindPatients(ctx, ihos.PatientIdentifier{Type: ihos.IDResident, Value: p.IDNumber}); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("down: %v", err)
	}
}

// Registration, the signed EMR and fees go out through the queue and the
// HIS accepts each; the console's code mapping turns platform codes into the
// HIS's on the wire.
func TestEveryEventAndCodeMapping(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := ihos.FormatTime(time.Now())
	if _, err := r.db.ExecContext(ctx, `INSERT INTO his_code_maps (id, kind, platform_code, his_code, his_name, created_at, updated_at) VALUES (?, 'department', 'XNK', '0101', '心血管内科', ?, ?)`,
		ihos.NewID(), now, now); err != nil {
		t.Fatal(err)
	}
	p := hissim.DemoPatients[1]
	d := ihos.HISMessageData{Patient: ihos.HISPatient{HISID: p.HISID, Name: p.Name, IDNumber: p.IDNumber}, VisitNo: ihos.NewID(),
		DepartmentCode: "XNK", DepartmentName: "心血管内科", DoctorCode: "D1001", DoctorName: "演示医生"}
	var ids []string
	err := r.db.Tx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		visit, err := r.svc.Send(ctx, tx, ihos.HISRegisterVisit, d)
		if err != nil {
			return err
		}
		emr := d
		emr.DocumentNo, emr.Document = ihos.NewID(), []byte(`{"chief_complaint":"头晕三天","diagnosis":[{"code":"I10","name":"原发性高血压"}]}`)
		doc, err := r.svc.Send(ctx, tx, ihos.HISEMR, emr)
		if err != nil {
			return err
		}
		fees := d
		fees.Fees = []ihos.HISFeeLine{{FeeID: ihos.NewID(), ItemCode: "ZX001", ItemName: "互联网复诊费", Quantity: "1", AmountFen: 2500}}
		fee, err := r.svc.Send(ctx, tx, ihos.HISFees, fees)
		ids = append(ids, visit, doc, fee)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = r.db.Tx(ctx, func(tx *sql.Tx) error { _, err := r.svc.Send(ctx, tx, ihos.HISLabOrder, d); return err })
	if ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("Send of an order (orders go through PlaceOrder): %v", err)
	}
	r.queue.Kick()
	waitFor(t, 10*time.Second, "all three accepted", func() bool {
		return r.count(`SELECT COUNT(*) FROM his_outbox WHERE status = 'sent' AND ack_code = 'AA'`) == 3
	})
	for _, typ := range []string{"ADT^A04", "MDM^T02", "DFT^P03"} {
		if got := r.sim.Received(typ); len(got) != 1 || got[0].PatientHISID != p.HISID {
			t.Errorf("%s: simulator received %+v", typ, got)
		}
	}
	var req string
	r.db.QueryRowContext(ctx, `SELECT request FROM his_messages WHERE type = 'ADT^A04'`).Scan(&req)
	if !strings.Contains(req, "PV1|1|O|0101^") {
		t.Errorf("the registration does not carry the mapped department code 0101:\n%s", req)
	}
	r.db.QueryRowContext(ctx, `SELECT request FROM his_messages WHERE type = 'DFT^P03'`).Scan(&req)
	if !strings.Contains(req, "|25.00") || !strings.Contains(req, "互联网复诊费") {
		t.Errorf("the fee message:\n%s", req)
	}
}

// The patient index: a match on ID number and name links at full
// confidence; a name that differs waits for a person; a person's link stays.
func TestLinkPatient(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	p := hissim.DemoPatients[0]
	l, err := r.svc.LinkPatient(ctx, his.LinkRequest{PatientID: "u1", Name: p.Name, IDNumber: p.IDNumber})
	if err != nil || l.Status != his.LinkLinked || l.Confidence != 100 || l.HISPatientID != p.HISID {
		t.Fatalf("exact match: %+v %v", l, err)
	}
	l, err = r.svc.LinkPatient(ctx, his.LinkRequest{PatientID: "u2", Name: "张叁", IDNumber: p.IDNumber})
	if err != nil || l.Status != his.LinkReview || l.Confidence >= 100 || !strings.Contains(l.Note, "姓名") {
		t.Fatalf("name differs: %+v %v", l, err)
	}
	if _, err := r.svc.LinkPatient(ctx, his.LinkRequest{PatientID: "u3", Name: "无名", IDNumber: "110101199001011237"}); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Fatalf("unknown: %v", err)
	}
	r.db.ExecContext(ctx, `UPDATE patient_links SET method = 'manual', status = 'linked', his_patient_id = 'P000009' WHERE patient_id = 'u2'`)
	l, err = r.svc.LinkPatient(ctx, his.LinkRequest{PatientID: "u2", Name: "张叁", IDNumber: p.IDNumber})
	if err != nil || l.HISPatientID != "P000009" {
		t.Fatalf("a person's link was overwritten: %+v %v", l, err)
	}
	if n := r.count(`SELECT COUNT(*) FROM patient_links`); n != 2 {
		t.Fatalf("%d links, want 2", n)
	}
}
