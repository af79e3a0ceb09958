package cloud_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/paychannel/paysim"
	"ihos/reconcile"
)

// today is the Shanghai day now, the day the rig's payments are booked on;
// the simulator's bill of today is the day so far.
func today() string { return time.Now().In(ihos.Shanghai).Format(time.DateOnly) }

// runDay asks the cloud to reconcile day (source "" = all three sides).
func (r *payRig) runDay(day, source string) []reconcile.Run {
	r.t.Helper()
	var page reconcile.RunsPage
	if code := r.call("POST", "/api/admin/reconcile/runs", reconcile.RunRequest{Day: day, Source: source}, &page); code != 200 {
		r.t.Fatalf("run %s %s: %d", day, source, code)
	}
	return page.Runs
}

func (r *payRig) items(runID string) []reconcile.Item {
	r.t.Helper()
	var out struct{ Items []reconcile.Item }
	if code := r.call("GET", "/api/admin/reconcile/runs/"+runID+"/items", nil, &out); code != 200 {
		r.t.Fatalf("items: %d", code)
	}
	return out.Items
}

// TestReconcileAfterTimeout: a day of paid orders, a refund, and an order
// the patient never paid, closed at the channel by the resolver when its
// time ran out, reconciles against the channel simulator's real bill with no
// mismatch; the never-completed order is on neither side. A lost notify
// (our record left unpaid) then shows as the status mismatch it is.
func TestReconcileAfterTimeout(t *testing.T) {
	cloudtest.Engines(t, func(t *testing.T, dsn string) {
		r := newPayRig(t, dsn, func(pc *cloud.PayChannelConfig) {
			pc.PayTimeout = 2 * time.Second
			pc.QueryAfter = 200 * time.Millisecond
		})
		a := r.paid(2500)
		b := r.paid(1000)
		r.mode(paysim.Mode{RefundDelayMS: 50})
		ref := r.refund(b.ID, 300, "k1")
		r.waitRefund(ref.ID, ihos.RefundSucceeded, 3*time.Second)
		r.mode(paysim.Mode{})
		never := r.order(700, "")
		closed := r.waitStatus(never.Payment.ID, ihos.PaymentClosed, 8*time.Second)
		if closed.CashStatus != ihos.LegReversed {
			t.Fatalf("not reversed at the deadline: %+v", closed)
		}

		runs := r.runDay(today(), "")
		if len(runs) != 3 {
			t.Fatalf("runs %+v", runs)
		}
		for _, run := range runs {
			if run.HospitalID != testHosp || run.Status != reconcile.RunDone || run.Mismatches != 0 {
				t.Errorf("run %+v", run)
			}
			switch run.Source {
			case reconcile.Channel.Name:
				want := reconcile.Tally{OursCount: 3, TheirsCount: 3, OursPay: 3500, OursRefund: 300, TheirsPay: 3500, TheirsRefund: 300, Matched: 3}
				if run.Tally != want {
					t.Errorf("channel tally %+v, want %+v", run.Tally, want)
				}
			case reconcile.Insurance.Name:
				// No appliance is linked: the 3201 check is noted as not made.
				if run.StmtStatus != reconcile.StmtUnchecked || !strings.Contains(run.StmtDetail, "无法连接") {
					t.Errorf("insurance run %+v", run)
				}
			}
		}

		// A notify lost and never queried: we think a is unpaid, the channel has it paid.
		if _, err := r.app.Node.DB.ExecContext(context.Background(), `UPDATE payments SET cash_status = 'pending', status = 'paying', paid_at = NULL WHERE id = ?`, a.ID); err != nil {
			t.Fatal(err)
		}
		runs = r.runDay(today(), reconcile.Channel.Name)
		if len(runs) != 1 || runs[0].Mismatches != 1 {
			t.Fatalf("after the lost notify: %+v", runs)
		}
		items := r.items(runs[0].ID)
		if len(items) != 1 || items[0].Key != a.OutTradeNo || items[0].Kind != reconcile.StatusDiffers || items[0].Suggestion != "调用查询补记为已支付" {
			t.Fatalf("items %+v", items)
		}
		for _, it := range items {
			if it.Key == closed.OutTradeNo {
				t.Errorf("the closed order is a mismatch: %+v", it)
			}
		}
	})
}

// TestReconcileOverLink: the runs replicate to the hospital's appliance, and
// the appliance's console asks the cloud over the link to run a day and to
// resolve a mismatch (reconcile.run, reconcile.resolve).
func TestReconcileOverLink(t *testing.T) {
	r := newPayRigLeaf(t, "", "127.0.0.1:0", nil)
	ctx := context.Background()
	a, _ := enrollAppliance(t, r.url, r.code)
	p := r.paid(1800)
	if _, err := r.app.Node.DB.ExecContext(ctx, `UPDATE payments SET cash_status = 'pending', status = 'paying', paid_at = NULL WHERE id = ?`, p.ID); err != nil {
		t.Fatal(err)
	}

	remote := reconcile.LinkRemote{Link: a.Link, Hospital: testHosp}
	day := today()
	var err2 error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err2 = remote.Run(ctx, day, ""); err2 == nil || time.Now().After(deadline) {
			break // the link may take a moment to come up
		}
	}
	if err2 != nil {
		t.Fatal(err2)
	}
	replica := &reconcile.Reconciler{DB: a.Node.DB}
	var runs []reconcile.Run
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		runs, err = replica.Runs(ctx, day, "")
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, run := range runs {
			if run.Status == reconcile.RunDone {
				done++
			}
		}
		if done == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance has runs %+v", runs)
		}
	}
	var channelRun reconcile.Run
	for _, run := range runs {
		if run.Source == reconcile.Channel.Name {
			channelRun = run
		}
	}
	var items []reconcile.Item
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if items, err = replica.Items(ctx, channelRun.ID, false); err == nil && len(items) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appliance has items %+v, %v", items, err)
		}
	}
	if items[0].Key != p.OutTradeNo || items[0].Kind != reconcile.StatusDiffers {
		t.Fatalf("item %+v", items[0])
	}
	staff := ihos.WithActor(ctx, ihos.Actor{Username: "finance"})
	if err := remote.Resolve(staff, items[0].ID, "已调用查询补记"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		items, _ = replica.Items(ctx, channelRun.ID, false)
		if len(items) == 1 && !items[0].ResolvedAt.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resolution not replicated: %+v", items)
		}
	}
	if items[0].ResolvedBy != "finance@"+testHosp || items[0].Note != "已调用查询补记" {
		t.Errorf("resolved %+v", items[0])
	}
	if err := remote.Resolve(staff, "nope", "x"); ihos.ErrorCode(err) != ihos.ENotFound {
		t.Errorf("unknown item: %v", err)
	}
}
