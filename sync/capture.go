package sync

import (
	"context"
	"database/sql"
	"slices"

	"ihos/internal/admin"
)

// OnWrite returns the admin layer's write hook that captures every change of a
// replicated resource in the transaction that made it. Resources that are not
// replicated (console users) pass through. hospital is the appliance's own
// hospital; the cloud passes "" (each row names its hospital).
func (r *Replica) OnWrite(hospital string) admin.OnWrite {
	return func(ctx context.Context, tx *sql.Tx, c admin.Change) error {
		e, ok := r.Entities.Entity(c.Resource.Name)
		if !ok {
			return nil
		}
		ref := Ref{Entity: e.Name, ID: c.ID}
		if e.Owner == Shared && c.Op != "create" {
			for col := range c.Row {
				if !slices.Contains(unstamped, col) {
					ref.Fields = append(ref.Fields, col)
				}
			}
		}
		return r.Capture(ctx, tx, hospital, ref)
	}
}
