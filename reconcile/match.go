// Package reconcile matches, day by day, what we recorded against what the
// outside world says happened (issue 7, docs/decisions/0012): the payment
// channel's daily bill now, the insurance settlements (setl_id) and the HIS
// fees later. A three-way match is our side against each external side in
// turn, each a Run stored in reconcile_runs with its mismatches in
// reconcile_items, every mismatch with a Chinese label and a suggested action
// for the finance staff.
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

// Mismatch kinds.
const (
	MissingTheirs = "missing_theirs" // we have it (money moved), they do not
	MissingOurs   = "missing_ours"   // they have it, we have no record at all
	AmountDiffers = "amount"         // both have it, amounts differ
	StatusDiffers = "status"         // they say done, we say not (yet)
	OtherDay      = "other_day"      // both say done, but we booked it on another day
)

// Side describes an external side: its name in reconcile_runs.source, its
// Chinese name in labels, and the action suggested for each mismatch kind.
type Side struct {
	Name        string
	Label       string // 渠道, 医保, HIS
	Suggestions map[string]string
}

// Channel is the payment channel's side.
var Channel = Side{
	Name:  "channel",
	Label: "渠道",
	Suggestions: map[string]string{
		MissingTheirs: "查询渠道订单，确认未支付后关闭",
		MissingOurs:   "按渠道流水补记或原路退款",
		AmountDiffers: "人工核对",
		StatusDiffers: "调用查询补记为已支付",
		OtherDay:      "跨日入账，核对两日账单，无需调账",
	},
}

// KindLabel is the Chinese label of a mismatch kind against side.
func (s Side) KindLabel(kind, recordKind string) string {
	switch kind {
	case MissingTheirs:
		return "我方有、" + s.Label + "无"
	case MissingOurs:
		return s.Label + "有、我方无"
	case AmountDiffers:
		return "金额不一致"
	case StatusDiffers:
		if recordKind == KindRefund {
			return "我方未退款而" + s.Label + "已退款"
		}
		return "我方未支付而" + s.Label + "已支付"
	case OtherDay:
		return "入账日期不一致"
	}
	return kind
}

// Suggestion is the action suggested for a mismatch of kind.
func (s Side) Suggestion(kind, recordKind string) string {
	if kind == StatusDiffers && recordKind == KindRefund && s.Name == Channel.Name {
		return "调用退款查询补记为已退款"
	}
	return s.Suggestions[kind]
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
	OursCount, TheirsCount  int64
	OursPay, OursRefund     int64
	TheirsPay, TheirsRefund int64
	Matched                 int64
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
// repeated within one side is an error: keys are idempotency keys.
func Match(ours, theirs Source, emit func(Mismatch) error) (Tally, error) {
	var t Tally
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
		return t, err
	}
	th, tOK, err := next(theirs, "their", nil)
	if err != nil {
		return t, err
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
			t.add(&o, true)
			if o.Done {
				r := o
				m = Mismatch{Kind: MissingTheirs, Ours: &r}
			}
		case c > 0:
			t.add(&th, false)
			if th.Done {
				r := th
				m = Mismatch{Kind: MissingOurs, Theirs: &r}
			}
		default:
			t.add(&o, true)
			t.add(&th, false)
			r1, r2 := o, th
			switch {
			case th.Done && !o.Done:
				m = Mismatch{Kind: StatusDiffers, Ours: &r1, Theirs: &r2}
			case o.Done && !th.Done:
				m = Mismatch{Kind: MissingTheirs, Ours: &r1, Theirs: &r2}
			case o.Amount != th.Amount:
				m = Mismatch{Kind: AmountDiffers, Ours: &r1, Theirs: &r2}
			case o.Done:
				t.Matched++
			}
		}
		if m.Kind != "" {
			if err := emit(m); err != nil {
				return t, err
			}
		}
		if advOurs {
			prev := o
			if o, oOK, err = next(ours, "our", &prev); err != nil {
				return t, err
			}
		}
		if advTheirs {
			prev := th
			if th, tOK, err = next(theirs, "their", &prev); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}
