// Package admin is the generic admin resource layer. A resource (institutions,
// departments, staff, console users, and the catalogues later features add) is
// declared once as a table of fields; from that declaration this package serves
// list / get / create / update / enable / disable / delete over JSON, the console
// pages that do the same, input validation with Chinese messages, permission and
// department-scope checks, and an audit entry with the record before and after
// every change, all without handler code of the resource's own.
//
// Workflows (bookings, visits, prescriptions, payments) are not resources: they
// are written by hand, because their rules are not a table.
package admin

import (
	"context"
	"database/sql"
)

// FieldType says how a field is validated, stored and shown.
type FieldType int

const (
	Text     FieldType = iota // one line of text
	LongText                  // several lines (TEXT column)
	Int                       // an integer within Min..Max
	Money                     // integer fen, shown in yuan
	Bool                      // a yes/no switch
	Enum                      // one of Options
	Ref                       // the id of a record of resource Ref
	Phone                     // a mainland mobile or landline number
	IDNumber                  // a GB 11643 resident identity number
	Password                  // write-only; Resource.HashPassword's output is stored in column <name>_hash
)

// Option is one choice of an Enum field.
type Option struct {
	Value string `json:"value"`
	Label string `json:"label"`
}

// Field declares one column of a resource.
type Field struct {
	Name      string // column and JSON name
	Label     string // Chinese label for forms, lists and error messages
	Type      FieldType
	Required  bool
	Max       int      // Text/LongText: maximum characters (default 100/2000); Int/Money: maximum value
	Min       int      // Int/Money: minimum value
	Options   []Option // Enum choices
	Ref       string   // Ref: the referenced resource's Name
	Filter    bool     // the list takes ?name=value for an exact match
	Search    bool     // the list's q matches this field (substring)
	List      bool     // shown as a column in the list
	Sort      bool     // the list may be sorted by it
	Unique    bool     // unique among records that are not deleted
	Sensitive bool     // personal data: sealed at rest, masked when shown, exact-match filter via a blind index
	Immutable bool     // set on create, never changed afterwards (a username, a code other systems hold)
	Help      string   // a hint shown under the form field
	Default   any      // the value of a new record that leaves the field out (nil: the type's zero)
}

// Resource declares an admin resource.
type Resource struct {
	Name  string // URL segment and audit resource name, e.g. "departments"
	Title string // the console page title, e.g. "科室信息管理"
	Noun  string // what one record is called, e.g. "科室"
	Table string
	Perm  string // permission group: reads need Perm+".read", changes Perm+".write"
	// Scope names the field holding the department a record belongs to; a
	// department-scoped role sees and changes only its own department's records.
	// Empty: scoped roles may read every record and change none.
	Scope   string
	Fields  []Field
	Display string // the field that names a record (shown for references)
	Sort    string // default list order, e.g. "sort_order" or "-created_at"
	// Validate checks rules across fields on the merged record (old is nil on
	// create) and returns messages by field name.
	Validate func(ctx context.Context, rec, old Record) map[string]string
	// HashPassword hashes Password fields; it also enforces the password policy.
	HashPassword func(string) (string, error)
	// AfterWrite runs after a change commits (for example to end the sessions of
	// a console user who was disabled).
	AfterWrite func(ctx context.Context, id string) error
	// NoDelete forbids deletion (records that must be kept are disabled instead).
	NoDelete bool
	// ReadOnly serves the resource for reading only: a replica of data the
	// other side owns (patient accounts on the appliance).
	ReadOnly bool
}

// Record is a resource's row as the admin layer passes it around: field name to
// string, int64 or bool, plus the system fields id, version, enabled,
// created_at and updated_at.
type Record map[string]any

// Authorizer decides whether the actor in ctx may use a permission, confined to
// a department when dept is not empty ("*" means any department the actor may
// see). The auth package implements it; it is an interface so this package does
// not depend on how users and roles are kept.
type Authorizer interface {
	Authorize(ctx context.Context, perm, dept string) error
}

// Change describes a committed-to-be write, for hooks such as the sync outbox,
// which must record it in the same transaction.
type Change struct {
	Resource *Resource
	Op       string // create, update, enable, disable, delete
	ID       string
	Version  int64
	Row      map[string]any // the stored column values after the change (sealed values stay sealed)
}

// OnWrite is called inside the write transaction of every change.
type OnWrite func(ctx context.Context, tx *sql.Tx, c Change) error

func (r *Resource) field(name string) *Field {
	for i := range r.Fields {
		if r.Fields[i].Name == name {
			return &r.Fields[i]
		}
	}
	return nil
}
