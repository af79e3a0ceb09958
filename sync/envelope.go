package sync

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Envelope is one message on the wire: the changes of one local transaction.
// Keeping a transaction in one message keeps it atomic on the other side too.
type Envelope struct {
	ChangeID string      `json:"change_id"` // globally unique; also the Nats-Msg-Id
	Hospital string      `json:"hospital"`  // the hospital whose data this is
	Origin   string      `json:"origin"`    // the node that committed it
	Side     Side        `json:"side"`      // the origin's side
	Seq      int64       `json:"seq"`       // the origin's outbox sequence
	HLC      HLC         `json:"hlc"`
	At       time.Time   `json:"at"` // commit time at the origin
	Rows     []RowChange `json:"rows"`
	// Snapshot marks a resync: the owner's rows replace the replica's whatever
	// their versions.
	Snapshot bool `json:"snapshot,omitempty"`
}

// RowChange is the new state of one row. Values holds every replicated column
// as text (or null), the form both database engines convert from losslessly.
type RowChange struct {
	Entity  string             `json:"entity"`
	ID      string             `json:"id"`
	Version int64              `json:"version"`
	Values  map[string]*string `json:"values"`
	// Stamps, for Shared entities, holds the clock of each field this change
	// wrote and the clock of the value it overwrote.
	Stamps map[string]FieldStamp `json:"stamps,omitempty"`
}

// FieldStamp is the clock of one field write: who wrote it when, and which
// write it replaced. An incoming write whose Prev is the local stamp follows the
// local value; any other is concurrent with it, and the later stamp wins.
type FieldStamp struct {
	Stamp
	Prev Stamp `json:"prev"`
}

// MaxRows bounds the rows of one envelope; a bigger local transaction is a bug
// or belongs to a snapshot.
const MaxRows = 10000

// Decode parses and checks the shape of an envelope; it does not check that the
// entities exist or that the hospital matches (Apply does).
func Decode(b []byte) (*Envelope, error) {
	var env Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("malformed message: %w", err)
	}
	switch {
	case len(env.ChangeID) == 0 || len(env.ChangeID) > 36:
		return nil, errors.New("malformed message: bad change_id")
	case len(env.Hospital) == 0 || len(env.Hospital) > 36:
		return nil, errors.New("malformed message: bad hospital")
	case len(env.Origin) == 0 || len(env.Origin) > 64:
		return nil, errors.New("malformed message: bad origin")
	case env.Side != Appliance && env.Side != Cloud:
		return nil, errors.New("malformed message: bad side")
	case len(env.Rows) == 0 || len(env.Rows) > MaxRows:
		return nil, errors.New("malformed message: no rows or too many")
	}
	for i, r := range env.Rows {
		if r.Entity == "" || len(r.ID) == 0 || len(r.ID) > 36 || r.Version < 1 || r.Values == nil {
			return nil, fmt.Errorf("malformed message: row %d", i)
		}
	}
	return &env, nil
}
