package ihos

import "context"

// Actor is who performs an action: a console user, a doctor in the app, a patient,
// or the system itself. Every audited change records one.
type Actor struct {
	UserID       string
	Username     string
	Name         string
	Role         string
	DepartmentID string
	// Scoped confines the actor to DepartmentID's records (department
	// administrators); a scoped actor without a department sees none.
	Scoped    bool
	IP        string
	RequestID string
}

// System is the actor of changes nobody typed: seeding, migrations, sync.
var System = Actor{UserID: "system", Username: "system", Name: "系统"}

type actorKey struct{}

// WithActor returns a context that carries a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx and whether there is one.
func ActorFrom(ctx context.Context) (Actor, bool) {
	a, ok := ctx.Value(actorKey{}).(Actor)
	return a, ok
}
