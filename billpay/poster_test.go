package billpay_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/billpay"
	"ihos/his/hissim"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/sync"
)

func newPoster(t *testing.T, app *appliance, captured *[]string) *billpay.Poster {
	return &billpay.Poster{DB: app.db, HIS: app.svc, Hospital: "h1",
		Capture: func(_ context.Context, _ *sql.Tx, refs ...sync.Ref) error {
			for _, r := range refs {
				if r.Entity != "bill_postings" {
					t.Errorf("captured %s", r.Entity)
				}
				*captured = append(*captured, r.ID)
			}
			return nil
		}}
}

func process(t *testing.T, p *billpay.Poster) int {
	t.Helper()
	n, err := p.Process(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitPosting runs passes until the payment's postings all have status.
func waitPosting(t *testing.T, p *billpay.Poster, paymentID string, want int, status string) []billpay.Posting {
	t.Helper()
	var got []billpay.Posting
	waitFor(t, 10*time.Second, "postings "+status, func() bool {
		process(t, p)
		var err error
		if got, err = p.Postings(context.Background(), paymentID); err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			return false
		}
		for _, b := range got {
			if b.Status != status {
				return false
			}
		}
		return true
	})
	return got
}

// messageFees returns the fee lines of a queued HIS message.
func messageFees(t *testing.T, db *sqldb.DB, id string) []ihos.HISFeeLine {
	t.Helper()
	var payload string
	if err := db.QueryRowContext(context.Background(), `SELECT payload FROM his_outbox WHERE id = ?`, id).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var m ihos.HISMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		t.Fatal(err)
	}
	if m.Event != ihos.HISFees {
		t.Fatalf("message %s is %s", id, m.Event)
	}
	return m.Data.Fees
}

// A paid bill is posted to the HIS once, when its items have arrived; the
// HIS settles the fee it names; passes after that, and a restarted poster,
// post nothing more.
func TestChargePostedOnce(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := startHIS(t)
		ctx := context.Background()
		app := startQueue(t, db, r)
		var captured []string
		poster := newPoster(t, app, &captured)
		patient := hissim.DemoPatients[0].HISID
		fees, err := r.adapter.UnpaidFees(ctx, patient)
		if err != nil || len(fees) == 0 {
			t.Fatalf("张三's unpaid fees: %v %+v", err, fees)
		}
		fee := fees[0]
		pay := paymentRow(t, db, ihos.PaymentPaid, fee.AmountFen)
		// Not yet: the items have not arrived.
		if n := process(t, poster); n != 0 {
			t.Fatalf("posted %d without items", n)
		}
		// An unpaid bill is not posted either.
		unpaid := paymentRow(t, db, ihos.PaymentPaying, 100)
		itemRow(t, db, unpaid, patient, "NOPE", 100)
		item := itemRow(t, db, pay, patient, fee.FeeID, fee.AmountFen)
		// The pass counts the HIS's answers too, which may already be in.
		if n := process(t, poster); n < 1 {
			t.Fatalf("first pass posted %d", n)
		}
		var charges, strays int
		db.QueryRow(`SELECT COUNT(*) FROM bill_postings WHERE payment_id = ?`, pay).Scan(&charges)
		db.QueryRow(`SELECT COUNT(*) FROM bill_postings WHERE payment_id = ?`, unpaid).Scan(&strays)
		if charges != 1 || strays != 0 {
			t.Fatalf("first pass: %d postings of the paid bill, %d of the unpaid one", charges, strays)
		}
		got := waitPosting(t, poster, pay, 1, billpay.StatusAccepted)
		b := got[0]
		if b.Kind != billpay.KindCharge || b.AmountFen != fee.AmountFen || b.RefundID != "" || b.Day != time.Now().In(ihos.Shanghai).Format("2006-01-02") {
			t.Fatalf("posting %+v", b)
		}
		lines := messageFees(t, db, b.HISMessageID)
		if len(lines) != 1 || lines[0].FeeID != item || lines[0].FillerOrderNo != fee.FeeID || lines[0].AmountFen != fee.AmountFen {
			t.Fatalf("lines %+v", lines)
		}
		if len(captured) < 2 {
			t.Fatalf("captured %v, want the queued and the accepted posting", captured)
		}
		left, err := r.adapter.UnpaidFees(ctx, patient)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(left, func(f ihos.HISFee) bool { return f.FeeID == fee.FeeID }) {
			t.Fatalf("the HIS still lists %s as unpaid", fee.FeeID)
		}
		// Once: more passes, and a poster started afresh, add nothing.
		process(t, poster)
		if n := process(t, newPoster(t, app, &captured)); n != 0 {
			t.Fatalf("a restarted poster did %d", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM his_outbox WHERE event = ?`, ihos.HISFees); n != 1 {
			t.Fatalf("%d fee messages queued", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM bill_postings`); n != 1 {
			t.Fatalf("%d postings", n)
		}
	})
}

// Refunds are credited once each, after the charge: a partial refund
// credits the lines in order and splits the last; the rest of the money
// credits from there on.
func TestRefundCredits(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := startHIS(t)
		app := startQueue(t, db, r)
		var captured []string
		poster := newPoster(t, app, &captured)
		patient := hissim.DemoPatients[1].HISID
		pay := paymentRow(t, db, ihos.PaymentPaid, 1000)
		a := itemRow(t, db, pay, patient, "TA"+pay[:8], 300)
		b := itemRow(t, db, pay, patient, "TB"+pay[:8], 700)
		// A refund that succeeded before the charge went out waits for it.
		first := refundRow(t, db, pay, 400, ihos.PaymentPartiallyRefunded)
		process(t, poster)
		if n := count(t, db, `SELECT COUNT(*) FROM bill_postings WHERE payment_id = ?`, pay); n != 2 {
			t.Fatalf("first pass made %d postings, want the charge and then the credit", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM bill_postings c JOIN his_outbox oc ON oc.id = c.his_message_id
			JOIN bill_postings r ON r.payment_id = c.payment_id AND r.kind = 'credit' JOIN his_outbox orr ON orr.id = r.his_message_id
			WHERE c.kind = 'charge' AND oc.seq < orr.seq AND oc.lane = orr.lane`); n != 1 {
			t.Fatalf("the credit is not queued after the charge in the patient's lane")
		}
		waitPosting(t, poster, pay, 2, billpay.StatusAccepted)
		second := refundRow(t, db, pay, 600, ihos.PaymentRefunded)
		got := waitPosting(t, poster, pay, 3, billpay.StatusAccepted)
		byRefund := map[string]billpay.Posting{}
		for _, p := range got {
			byRefund[p.RefundID] = p
		}
		c1, c2 := byRefund[first], byRefund[second]
		if c1.Kind != billpay.KindCredit || c1.AmountFen != -400 || c2.Kind != billpay.KindCredit || c2.AmountFen != -600 {
			t.Fatalf("credits %+v %+v", c1, c2)
		}
		type line struct {
			filler string
			amount int64
			qty    string
		}
		lines := func(id string) []line {
			var out []line
			for _, l := range messageFees(t, db, id) {
				out = append(out, line{l.FillerOrderNo, l.AmountFen, l.Quantity})
			}
			return out
		}
		fa, fb := "TA"+pay[:8], "TB"+pay[:8]
		if got, want := lines(c1.HISMessageID), []line{{fa, -300, "2"}, {fb, -100, ""}}; !slices.Equal(got, want) {
			t.Fatalf("first credit %+v, want %+v", got, want)
		}
		if got, want := lines(c2.HISMessageID), []line{{fb, -600, ""}}; !slices.Equal(got, want) {
			t.Fatalf("second credit %+v, want %+v", got, want)
		}
		charge := byRefund[""]
		for _, l := range messageFees(t, db, charge.HISMessageID) {
			if l.FeeID != a && l.FeeID != b {
				t.Fatalf("charge line %+v is not an item", l)
			}
		}
		if n := process(t, newPoster(t, app, &captured)); n != 0 {
			t.Fatalf("a restarted poster did %d", n)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM his_outbox WHERE event = ?`, ihos.HISFees); n != 3 {
			t.Fatalf("%d fee messages", n)
		}
	})
}

// A posting the HIS refuses is recorded with the reason; when staff re-send
// the message and the HIS accepts it, the posting follows.
func TestPostingFollowsTheAnswer(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) {
		r := startHIS(t)
		app := startQueue(t, db, r)
		var captured []string
		poster := newPoster(t, app, &captured)
		r.sim.SetMode(hissim.Mode{Name: hissim.ModeError, AckCode: ihos.AckError, Text: "收费接口维护中"})
		defer r.sim.SetMode(hissim.Mode{Name: hissim.ModeUp})
		pay := paymentRow(t, db, ihos.PaymentPaid, 500)
		itemRow(t, db, pay, hissim.DemoPatients[2].HISID, "TC"+pay[:8], 500)
		got := waitPosting(t, poster, pay, 1, billpay.StatusRefused)
		if !strings.Contains(got[0].StatusText, "收费接口维护中") || !strings.Contains(got[0].StatusText, "AE") {
			t.Fatalf("refused with %q", got[0].StatusText)
		}
		r.sim.SetMode(hissim.Mode{Name: hissim.ModeUp})
		if err := app.queue.Resend(context.Background(), got[0].HISMessageID); err != nil {
			t.Fatal(err)
		}
		got = waitPosting(t, poster, pay, 1, billpay.StatusAccepted)
		if got[0].StatusText != "" {
			t.Fatalf("accepted with %q", got[0].StatusText)
		}
	})
}

func TestCreditLines(t *testing.T) {
	items := []billpay.Item{{FeeID: "F1", Quantity: "1", AmountFen: 300}, {FeeID: "F2", Quantity: "2", AmountFen: 700}, {FeeID: "F3", Quantity: "1", AmountFen: 50}}
	sum := func(ls []ihos.HISFeeLine) (s int64, fillers []string) {
		for _, l := range ls {
			s += l.AmountFen
			fillers = append(fillers, l.FillerOrderNo)
		}
		return
	}
	for _, c := range []struct {
		credited, amount int64
		want             []string
	}{
		{0, 1050, []string{"F1", "F2", "F3"}},
		{0, 300, []string{"F1"}},
		{0, 301, []string{"F1", "F2"}},
		{300, 700, []string{"F2"}},
		{350, 700, []string{"F2", "F3"}},
		{1000, 50, []string{"F3"}},
	} {
		ls := billpay.CreditLines(items, c.credited, c.amount)
		s, fillers := sum(ls)
		if s != -c.amount || !slices.Equal(fillers, c.want) {
			t.Errorf("credited %d, amount %d: %d over %v, want %v", c.credited, c.amount, s, fillers, c.want)
		}
		ids := map[string]bool{}
		for _, l := range ls {
			if l.FeeID == "" || ids[l.FeeID] {
				t.Errorf("line id %q", l.FeeID)
			}
			ids[l.FeeID] = true
		}
	}
	// A whole line keeps its quantity; a split one does not claim any.
	ls := billpay.CreditLines(items, 0, 400)
	if ls[0].Quantity != "1" || ls[1].Quantity != "" || ls[1].AmountFen != -100 {
		t.Fatalf("lines %+v", ls)
	}
}
