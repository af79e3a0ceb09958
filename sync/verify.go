package sync

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"ihos"
)

// Anti-entropy: both sides compute, per entity, the row count and a checksum of
// every row's (id, version) for one hospital; where they differ, the version
// lists pin down the rows. Resync rebuilds a replica by having the owner send a
// snapshot of every row through the normal channel.

// Digest summarises one entity's rows for a hospital.
type Digest struct {
	Entity   string `json:"entity"`
	Count    int    `json:"count"`
	Checksum string `json:"checksum"`
}

// Difference is one row the two sides disagree on; a version of 0 means the
// row is missing on that side.
type Difference struct {
	Entity  string `json:"entity"`
	ID      string `json:"id"`
	Local   int64  `json:"local_version"`
	Remote  int64  `json:"remote_version"`
	Comment string `json:"comment"`
}

// Report is the result of Verify.
type Report struct {
	Hospital    string         `json:"hospital"`
	InSync      bool           `json:"in_sync"`
	Local       []Digest       `json:"local"`
	Remote      []Digest       `json:"remote"`
	Differences []Difference   `json:"differences"`
	Truncated   bool           `json:"truncated,omitempty"`
	CheckedAt   time.Time      `json:"checked_at"`
	Backlog     map[string]int `json:"backlog"`
}

// MaxDifferences bounds a report.
const MaxDifferences = 200

// versions returns id → version of an entity's rows for hospital. On an
// appliance every row is its own hospital's.
func (r *Replica) versions(ctx context.Context, hospital string, e *Entity) (map[string]int64, error) {
	q := "SELECT id, version FROM " + e.Table
	var args []any
	if r.Side == Cloud {
		q += " WHERE hospital_id = ?"
		args = append(args, hospital)
	}
	rows, err := r.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// Digests returns the digest of every entity for hospital.
func (r *Replica) Digests(ctx context.Context, hospital string) ([]Digest, error) {
	var out []Digest
	for _, e := range r.Entities.Entities() {
		vs, err := r.versions(ctx, hospital, e)
		if err != nil {
			return nil, err
		}
		ids := make([]string, 0, len(vs))
		for id := range vs {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		h := sha256.New()
		for _, id := range ids {
			fmt.Fprintf(h, "%s:%d\n", id, vs[id])
		}
		out = append(out, Digest{Entity: e.Name, Count: len(ids), Checksum: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// RPC methods the sync layer serves on both sides.
const (
	methodDigest   = "sync.digest"
	methodVersions = "sync.versions"
	methodResync   = "sync.resync"
)

// ServeSync answers the other side's digest, version and resync requests.
func (l *Link) ServeSync() error {
	if err := l.Serve(methodDigest, func(ctx context.Context, hospital string, _ json.RawMessage) (any, error) {
		return l.Replica.Digests(ctx, hospital)
	}); err != nil {
		return err
	}
	if err := l.Serve(methodVersions, func(ctx context.Context, hospital string, req json.RawMessage) (any, error) {
		var in struct{ Entity string }
		json.Unmarshal(req, &in)
		e, ok := l.Replica.Entities.Entity(in.Entity)
		if !ok {
			return nil, ihos.Errorf(ihos.ENotFound, "未知的同步数据类型 %s", in.Entity)
		}
		return l.Replica.versions(ctx, hospital, e)
	}); err != nil {
		return err
	}
	if l.Replica.Side == Cloud {
		if err := l.serveTransitKey(); err != nil {
			return err
		}
	}
	return l.Serve(methodResync, func(ctx context.Context, hospital string, req json.RawMessage) (any, error) {
		var in struct{ Entity string }
		json.Unmarshal(req, &in)
		n, err := l.Replica.Snapshot(ctx, hospital, in.Entity)
		l.Kick()
		return map[string]int{"rows": n}, err
	})
}

// Verify compares this side's data for hospital with the other side's and
// lists the differences. Changes still in flight show as differences, so the
// report carries both sides' backlogs.
func (l *Link) Verify(ctx context.Context, hospital string) (*Report, error) {
	rep := &Report{Hospital: hospital, CheckedAt: time.Now().UTC(), Backlog: map[string]int{}}
	var err error
	if rep.Local, err = l.Replica.Digests(ctx, hospital); err != nil {
		return nil, ihos.Internal(err)
	}
	if err := l.Call(ctx, hospital, methodDigest, struct{}{}, &rep.Remote); err != nil {
		return nil, err
	}
	n, _, _ := l.Replica.Backlog(ctx)
	rep.Backlog[string(l.Replica.Side)] = n
	remote := map[string]Digest{}
	for _, d := range rep.Remote {
		remote[d.Entity] = d
	}
	for _, d := range rep.Local {
		if remote[d.Entity] == d {
			continue
		}
		e, _ := l.Replica.Entities.Entity(d.Entity)
		mine, err := l.Replica.versions(ctx, hospital, e)
		if err != nil {
			return nil, ihos.Internal(err)
		}
		var theirs map[string]int64
		if err := l.Call(ctx, hospital, methodVersions, map[string]string{"entity": d.Entity}, &theirs); err != nil {
			return nil, err
		}
		add := func(id string, lv, rv int64, comment string) {
			if len(rep.Differences) >= MaxDifferences {
				rep.Truncated = true
				return
			}
			rep.Differences = append(rep.Differences, Difference{Entity: d.Entity, ID: id, Local: lv, Remote: rv, Comment: comment})
		}
		ids := make([]string, 0, len(mine))
		for id := range mine {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			rv, ok := theirs[id]
			switch {
			case !ok:
				add(id, mine[id], 0, "对方缺少此记录")
			case rv != mine[id]:
				add(id, mine[id], rv, "版本不一致")
			}
		}
		ids = ids[:0]
		for id := range theirs {
			if _, ok := mine[id]; !ok {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids)
		for _, id := range ids {
			add(id, 0, theirs[id], "本方缺少此记录")
		}
	}
	rep.InSync = len(rep.Differences) == 0 && !rep.Truncated
	return rep, nil
}

// Resync rebuilds the other side's replica of entity (owned here) or asks the
// other side to rebuild this side's (owned there). It returns the rows sent.
func (l *Link) Resync(ctx context.Context, hospital, entity string) (int, error) {
	e, ok := l.Replica.Entities.Entity(entity)
	if !ok {
		return 0, ihos.Errorf(ihos.ENotFound, "未知的同步数据类型 %s", entity)
	}
	if e.Owner == l.Replica.Side || e.Owner == Shared {
		n, err := l.Replica.Snapshot(ctx, hospital, entity)
		l.Kick()
		return n, err
	}
	var out map[string]int
	err := l.Call(ctx, hospital, methodResync, map[string]string{"entity": entity}, &out)
	return out["rows"], err
}

// SnapshotBatch is the number of rows per snapshot message.
const SnapshotBatch = 500

// Snapshot captures every row of entity for hospital into the outbox, in
// messages of SnapshotBatch rows marked as a snapshot, which the other side
// applies over whatever its replica holds.
func (r *Replica) Snapshot(ctx context.Context, hospital, entity string) (int, error) {
	e, ok := r.Entities.Entity(entity)
	if !ok {
		return 0, ihos.Errorf(ihos.ENotFound, "未知的同步数据类型 %s", entity)
	}
	if e.Owner != r.Side && e.Owner != Shared {
		return 0, ihos.Errorf(ihos.EInvalid, "%s 由对方维护，只能由对方重发", entity)
	}
	vs, err := r.versions(ctx, hospital, e)
	if err != nil {
		return 0, ihos.Internal(err)
	}
	ids := make([]string, 0, len(vs))
	for id := range vs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for start := 0; start < len(ids); start += SnapshotBatch {
		batch := ids[start:min(start+SnapshotBatch, len(ids))]
		err := r.DB.Tx(ctx, func(tx *sql.Tx) error {
			return r.capture(ctx, tx, hospital, true, refsOf(e, batch)...)
		})
		if err != nil {
			return start, ihos.Internal(err)
		}
	}
	return len(ids), nil
}

func refsOf(e *Entity, ids []string) []Ref {
	refs := make([]Ref, len(ids))
	for i, id := range ids {
		refs[i] = Ref{Entity: e.Name, ID: id}
	}
	return refs
}
