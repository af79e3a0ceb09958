// Package reconcile matches, day by day, what we recorded against what the
// outside world says happened (issue 7, docs/decisions/0012): the payment
// channel's daily bill (cash legs), the settlements the appliance recorded
// at the insurance centre with the centre's 3201 totals check (insurance
// legs), and the charges and credits the HIS accepted (outpatient bills). A
// three-way match is our side against each external side in turn, each a
// Run per hospital stored in reconcile_runs with its mismatches in
// reconcile_items, every mismatch with a Chinese label and a suggested
// action for the finance staff. The cloud runs them (nightly, or on
// request); both tables replicate to each hospital's appliance, whose
// console's 对账管理 reads them and asks the cloud to resolve or re-run.
//
// The matcher streams: each side is a Source yielding records in key order,
// and a merge join walks both at once, so a day of a million records per side
// costs memory for the mismatches only, not for the day.
package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Record kinds: money in or money back.
const (
	KindPayment = "payment"
	KindRefund  = "refund"
)

// Record is one money movement as one side knows it.
type Record struct {
	Kind   string // KindPayment or KindRefund
	Key    string // the shared idempotency key: out_trade_no, out_refund_no, setl_id, the HIS fee number
	Amount int64  // fen
	// Done reports whether this side considers the money moved. Our side also
	// yields records still pending (a cash leg being queried), so that an
	// external side that says "paid" is shown as a status difference rather
	// than as a record we lack.
	Done   bool
	Status string    // the side's own status, for the console (paid, paying…)
	Time   time.Time // when the money moved (or the record was created, while not done)
	Ref    string    // the side's own id: our payment or refund id, the channel's transaction id…
	// Parts are the insurance fund and personal account parts of Amount, for
	// the insurance side; zero elsewhere. A pair differing in a part differs
	// in amount even when the sums agree.
	Parts [2]int64
	// Hospital is the hospital the record belongs to. An external side that
	// does not know it (the channel's bill) leaves it empty: a pair takes
	// ours, a record we lack stays unattributed.
	Hospital string
}

// compare orders records by kind, then key: the order every Source yields.
func compare(a, b *Record) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return cmp.Compare(a.Key, b.Key)
}

// Source yields the records of one side for one day in (Kind, Key) order,
// byte-wise (Go string order; a MySQL query must ORDER BY a binary
// collation). Next returns ok false at the end. The matcher checks the order
// and fails a run on a source that breaks it rather than report false
// mismatches.
type Source interface {
	Next() (r Record, ok bool, err error)
}

// SliceSource is a Source over records held in memory, sorted by
// NewSliceSource.
type SliceSource struct {
	recs []Record
	i    int
}

// NewSliceSource sorts recs (in place) and yields them.
func NewSliceSource(recs []Record) *SliceSource {
	slices.SortFunc(recs, func(a, b Record) int { return compare(&a, &b) })
	return &SliceSource{recs: recs}
}

// Next implements Source.
func (s *SliceSource) Next() (Record, bool, error) {
	if s.i >= len(s.recs) {
		return Record{}, false, nil
	}
	s.i++
	return s.recs[s.i-1], true, nil
}

// Mismatch is one record the sides disagree on. Ours or Theirs is nil where
// that side has no record.
type Mismatch struct {
	Kind   string
	Ours   *Record
	Theirs *Record
}

// Key is the record key the mismatch is about.
func (m Mismatch) Key() string {
	if m.Ours != nil {
		return m.Ours.Key
	}
	return m.Theirs.Key
}

// Hospital is the hospital the mismatch belongs to: our record's, else
// theirs' ("" when neither side knows).
func (m Mismatch) Hospital() string {
	if m.Ours != nil && m.Ours.Hospital != "" {
		return m.Ours.Hospital
	}
	if m.Theirs != nil {
		return m.Theirs.Hospital
	}
	return ""
}

// RecordKind is payment or refund.
func (m Mismatch) RecordKind() string {
	if m.Ours != nil {
		return m.Ours.Kind
	}
	return m.Theirs.Kind
}

// Tally is what a match counted: the records each side says moved money, the
// matched pairs, and the sums in fen.
type Tally struct {
	OursCount    int64 `json:"ours_count"`
	TheirsCount  int64 `json:"theirs_count"`
	OursPay      int64 `json:"ours_pay"`
	OursRefund   int64 `json:"ours_refund"`
	TheirsPay    int64 `json:"theirs_pay"`
	TheirsRefund int64 `json:"theirs_refund"`
	Matched      int64 `json:"matched"`
}

// Tallies are a match's tallies by hospital ("" for records no side could
// attribute).
type Tallies map[string]*Tally

// merge adds u to t.
func (t *Tally) merge(u *Tally) {
	t.OursCount += u.OursCount
	t.TheirsCount += u.TheirsCount
	t.OursPay += u.OursPay
	t.OursRefund += u.OursRefund
	t.TheirsPay += u.TheirsPay
	t.TheirsRefund += u.TheirsRefund
	t.Matched += u.Matched
}

// of returns hospital's tally, made on first use.
func (ts Tallies) of(hospital string) *Tally {
	t := ts[hospital]
	if t == nil {
		t = &Tally{}
		ts[hospital] = t
	}
	return t
}

func (t *Tally) add(r *Record, ours bool) {
	if !r.Done {
		return
	}
	count, pay, refund := &t.TheirsCount, &t.TheirsPay, &t.TheirsRefund
	if ours {
		count, pay, refund = &t.OursCount, &t.OursPay, &t.OursRefund
	}
	*count++
	if r.Kind == KindRefund {
		*refund += r.Amount
	} else {
		*pay += r.Amount
	}
}

// Match merges ours and theirs, both in (Kind, Key) order, and calls emit for
// every mismatch in key order. Our records that are not done and that they do
// not have either are no mismatch: nothing moved on either side. A key
// repeated within one side is an error: keys are idempotency keys. The
// tallies are by the records' hospital; a record of theirs paired with ours
// takes our hospital when it has none.
func Match(ours, theirs Source, emit func(Mismatch) error) (Tallies, error) {
	ts := Tallies{}
	// Records come in runs of one hospital or few: remember the last tally
	// rather than look the map up for every record.
	var lastHospital string
	var last *Tally
	tally := func(h string) *Tally {
		if last == nil || h != lastHospital {
			lastHospital, last = h, ts.of(h)
		}
		return last
	}
	next := func(s Source, name string, prev *Record) (Record, bool, error) {
		r, ok, err := s.Next()
		if err != nil || !ok {
			return r, ok, err
		}
		if prev != nil {
			if c := compare(prev, &r); c == 0 {
				return r, false, fmt.Errorf("reconcile: %s side repeats %s %s", name, r.Kind, r.Key)
			} else if c > 0 {
				return r, false, fmt.Errorf("reconcile: %s side out of order: %s %s after %s %s", name, r.Kind, r.Key, prev.Kind, prev.Key)
			}
		}
		return r, true, nil
	}
	o, oOK, err := next(ours, "our", nil)
	if err != nil {
		return ts, err
	}
	th, tOK, err := next(theirs, "their", nil)
	if err != nil {
		return ts, err
	}
	for oOK || tOK {
		c := 0
		switch {
		case !tOK:
			c = -1
		case !oOK:
			c = 1
		default:
			c = compare(&o, &th)
		}
		var m Mismatch
		advOurs, advTheirs := c <= 0, c >= 0
		switch {
		case c < 0:
			tally(o.Hospital).add(&o, true)
			if o.Done {
				r := o
				m = Mismatch{Kind: MissingTheirs, Ours: &r}
			}
		case c > 0:
			tally(th.Hospital).add(&th, false)
			if th.Done {
				r := th
				m = Mismatch{Kind: MissingOurs, Theirs: &r}
			}
		default:
			if th.Hospital == "" {
				th.Hospital = o.Hospital
			}
			tally(o.Hospital).add(&o, true)
			tally(th.Hospital).add(&th, false)
			r1, r2 := o, th
			switch {
			case th.Done && !o.Done:
				m = Mismatch{Kind: StatusDiffers, Ours: &r1, Theirs: &r2}
			case o.Done && !th.Done:
				m = Mismatch{Kind: MissingTheirs, Ours: &r1, Theirs: &r2}
			case o.Amount != th.Amount || o.Parts != th.Parts:
				m = Mismatch{Kind: AmountDiffers, Ours: &r1, Theirs: &r2}
			case o.Done:
				tally(o.Hospital).Matched++
			}
		}
		if m.Kind != "" {
			if err := emit(m); err != nil {
				return ts, err
			}
		}
		if advOurs {
			prev := o
			if o, oOK, err = next(ours, "our", &prev); err != nil {
				return ts, err
			}
		}
		if advTheirs {
			prev := th
			if th, tOK, err = next(theirs, "their", &prev); err != nil {
				return ts, err
			}
		}
	}
	return ts, nil
}
