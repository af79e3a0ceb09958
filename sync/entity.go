package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"ihos/internal/sqldb"
)

// Side names a deployment: who owns an entity, and where a change came from.
type Side string

// Sides.
const (
	Appliance Side = "appliance" // the hospital's servers
	Cloud     Side = "cloud"     // the internet-facing service
	Shared    Side = "shared"    // both write; merged per field, last writer wins
)

// Entity declares a replicated table. Adding one is a line:
//
//	sync.Entity{Name: "departments", Table: "departments", Owner: sync.Appliance}
//
// The replicated columns are read from the table itself at start, so a column a
// later migration adds replicates without touching the declaration. Every
// replicated table has the columns id, version and deleted_at (see
// docs/decisions/0003) and hospital_id.
type Entity struct {
	Name  string // the name on the wire
	Table string
	Owner Side
	// Local lists columns that never leave this node (blind indexes, sealed
	// personal data under this node's key).
	Local []string
	// Sealed lists replicated columns holding personal data sealed under the
	// node's PII key (package pii). They cross sealed under the hospital's
	// transit key and rest sealed under the receiver's own key; a column
	// <name>_bidx beside one holds its blind index, which the receiver
	// computes (see keys.go). Not for Shared entities.
	Sealed []string

	columns []string        // resolved by Registry.Resolve
	indexed map[string]bool // sealed columns with a _bidx twin
}

// Columns returns the replicated columns, in table order.
func (e *Entity) Columns() []string { return e.columns }

// Registry holds the entities a node replicates.
type Registry struct {
	entities []*Entity
	byName   map[string]*Entity
	// sealedMarkers are the encoded entity names of entities with sealed
	// columns, as they appear in an envelope.
	sealedMarkers [][]byte
}

// NewRegistry returns a registry of entities; Resolve must run before use.
func NewRegistry(entities ...Entity) *Registry {
	r := &Registry{byName: map[string]*Entity{}}
	for _, e := range entities {
		e := e
		if _, dup := r.byName[e.Name]; dup {
			panic("sync: entity declared twice: " + e.Name)
		}
		if len(e.Sealed) > 0 {
			if e.Owner == Shared {
				panic("sync: sealed columns on a shared entity: " + e.Name)
			}
			m, _ := json.Marshal(map[string]string{"entity": e.Name})
			r.sealedMarkers = append(r.sealedMarkers, bytes.Trim(m, "{}"))
		}
		r.entities = append(r.entities, &e)
		r.byName[e.Name] = &e
	}
	return r
}

// Entity returns the entity called name.
func (r *Registry) Entity(name string) (*Entity, bool) {
	e, ok := r.byName[name]
	return e, ok
}

// Entities returns every entity in declaration order.
func (r *Registry) Entities() []*Entity { return r.entities }

// Resolve reads each table's columns from the database.
func (r *Registry) Resolve(ctx context.Context, db *sqldb.DB) error {
	for _, e := range r.entities {
		rows, err := db.QueryContext(ctx, "SELECT * FROM "+e.Table+" WHERE 1 = 0")
		if err != nil {
			return fmt.Errorf("sync: entity %s: %w", e.Name, err)
		}
		cols, err := rows.Columns()
		rows.Close()
		if err != nil {
			return err
		}
		e.columns = e.columns[:0]
		e.indexed = map[string]bool{}
		for _, c := range cols {
			c = strings.ToLower(c)
			if !slices.Contains(e.Local, c) && !strings.HasSuffix(c, "_bidx") {
				e.columns = append(e.columns, c)
			}
			if base, ok := strings.CutSuffix(c, "_bidx"); ok && slices.Contains(e.Sealed, base) {
				e.indexed[base] = true
			}
		}
		for _, c := range e.Sealed {
			if !slices.Contains(e.columns, c) {
				return fmt.Errorf("sync: entity %s: sealed column %s is not a replicated column of %s", e.Name, c, e.Table)
			}
		}
		for _, need := range []string{"id", "version", "deleted_at", "hospital_id"} {
			if !slices.Contains(e.columns, need) {
				return fmt.Errorf("sync: entity %s: table %s has no %s column", e.Name, e.Table, need)
			}
		}
	}
	return nil
}
