package admin

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/pii"
	"ihos/internal/sqldb"
)

// Store reads and writes the registered resources.
type Store struct {
	DB      *sqldb.DB
	Sealer  *pii.Sealer
	Auth    Authorizer
	OnWrite OnWrite // optional; the sync outbox hooks in here
	// AfterCommit, if set, runs after every committed change (the sync relay's
	// Kick, so a change leaves at once instead of at the relay's next poll).
	AfterCommit func()

	resources []*Resource
	byName    map[string]*Resource

	// ListCacheBytes bounds the cache of list pages and filter totals (see
	// listcache.go); 0 turns it off. NewStore sets DefaultListCacheBytes on
	// SQLite, whose file only this process writes, and 0 on MySQL, where the
	// server may be shared with other processes that write without this
	// process's Tx; set it there only when this process is the sole writer.
	// Set it before the store serves requests.
	ListCacheBytes int

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt // List's prepared statements by SQL text (SQLite)

	cache                  listCache
	cacheHits, cacheMisses atomic.Uint64
}

// ListCacheStats reports how many list API requests the cache answered and how
// many it did not, since the store was made.
func (s *Store) ListCacheStats() (hits, misses uint64) {
	return s.cacheHits.Load(), s.cacheMisses.Load()
}

// NewStore returns a Store for the given resources. It panics on a declaration
// error (a Ref to an unknown resource, a Scope that is not a field), since those
// are programming mistakes found at start-up.
func NewStore(db *sqldb.DB, sealer *pii.Sealer, auth Authorizer, resources ...*Resource) *Store {
	s := &Store{DB: db, Sealer: sealer, Auth: auth, byName: map[string]*Resource{}, stmts: map[string]*sql.Stmt{}}
	if db.Engine == sqldb.SQLite {
		s.ListCacheBytes = DefaultListCacheBytes
	}
	for _, r := range resources {
		s.resources = append(s.resources, r)
		s.byName[r.Name] = r
	}
	for _, r := range resources {
		for _, f := range r.Fields {
			if f.Type == Ref && s.byName[f.Ref] == nil {
				panic(fmt.Sprintf("admin: %s.%s refers to unknown resource %q", r.Name, f.Name, f.Ref))
			}
			if f.Sensitive && sealer == nil {
				panic(fmt.Sprintf("admin: %s.%s is sensitive but the store has no sealer", r.Name, f.Name))
			}
			if f.Type == Password && r.HashPassword == nil {
				panic(fmt.Sprintf("admin: %s.%s is a password but the resource has no HashPassword", r.Name, f.Name))
			}
		}
		if r.Scope != "" && r.Scope != "id" && r.field(r.Scope) == nil {
			panic(fmt.Sprintf("admin: %s scope %q is not a field", r.Name, r.Scope))
		}
	}
	return s
}

// Resources returns the registered resources in registration order.
func (s *Store) Resources() []*Resource { return s.resources }

// Resource returns the resource called name, or a not-found error.
func (s *Store) Resource(name string) (*Resource, error) {
	r := s.byName[name]
	if r == nil {
		return nil, ihos.Errorf(ihos.ENotFound, "没有这类数据：%s", name)
	}
	return r, nil
}

// Query selects records for List.
type Query struct {
	Q        string            // substring match over the Search fields
	Filters  map[string]string // exact match by field name; "enabled" is also accepted
	Page     int               // 1-based
	PageSize int               // default 20, at most 100
	Sort     string            // a Sort field, "-" prefix for descending
}

// Page is one page of a list.
type Page struct {
	Items    []Record `json:"items"`
	Total    int      `json:"total"`
	Page     int      `json:"page"`
	PageSize int      `json:"page_size"`
}

// MaxPageSize bounds a list page.
const MaxPageSize = 100

func systemColumns() []string {
	return []string{"id", "enabled", "version", "created_at", "updated_at"}
}

// columns lists the stored columns of r in scan order (Password fields are never read).
func (r *Resource) columns() []string {
	cols := systemColumns()
	for _, f := range r.Fields {
		if f.Type != Password {
			cols = append(cols, f.Name)
		}
	}
	return cols
}

// List returns a page of records the actor may see.
func (s *Store) List(ctx context.Context, r *Resource, q Query) (*Page, error) {
	if err := s.Auth.Authorize(ctx, r.Perm+".read", ""); err != nil {
		return nil, err
	}
	return s.list(ctx, r, q, s.DB.Generation())
}

// list is List after authorization. gen is the write generation read before
// anything was read from the database; a cached total is used only if it was
// counted in that generation.
func (s *Store) list(ctx context.Context, r *Resource, q Query, gen uint64) (*Page, error) {
	where := []string{"deleted_at IS NULL"}
	var args []any
	if dept := scopedDept(ctx, r); dept != "" {
		if r.Scope == "" {
			// Scoped roles see unscoped resources in full (an institution list, say).
		} else {
			where = append(where, r.Scope+" = ?")
			args = append(args, dept)
		}
	}
	bad := map[string]string{}
	names := make([]string, 0, len(q.Filters))
	for name := range q.Filters {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		v := q.Filters[name]
		if name == "enabled" {
			b, msg := normalize(&Field{Type: Bool}, v)
			if msg != "" {
				bad[name] = msg
				continue
			}
			where = append(where, "enabled = ?")
			args = append(args, boolInt(b.(bool)))
			continue
		}
		f := r.field(name)
		if f == nil || !f.Filter {
			bad[name] = "不能按此字段筛选"
			continue
		}
		val, msg := normalize(f, v)
		if msg != "" {
			bad[name] = msg
			continue
		}
		col := f.Name
		if f.Sensitive {
			col, val = f.Name+"_bidx", s.Sealer.Index(val.(string))
		}
		if b, ok := val.(bool); ok {
			val = boolInt(b)
		}
		where = append(where, col+" = ?")
		args = append(args, val)
	}
	if q.Q = strings.TrimSpace(q.Q); q.Q != "" {
		if len([]rune(q.Q)) > 50 {
			bad["q"] = "搜索内容不能超过 50 个字"
		}
		var ors []string
		for _, f := range r.Fields {
			if f.Search && !f.Sensitive {
				ors = append(ors, f.Name+" LIKE ?"+sqldb.Escape)
				args = append(args, sqldb.Contains(q.Q))
			}
			if f.Search && f.Sensitive {
				ors = append(ors, f.Name+"_bidx = ?")
				args = append(args, s.Sealer.Index(q.Q))
			}
		}
		if len(ors) > 0 {
			where = append(where, "("+strings.Join(ors, " OR ")+")")
		}
	}
	order, msg := r.orderBy(q.Sort)
	if msg != "" {
		bad["sort"] = msg
	}
	if q.Page < 0 || q.PageSize < 0 || q.PageSize > MaxPageSize {
		bad["page_size"] = fmt.Sprintf("每页条数应在 1 到 %d 之间", MaxPageSize)
	}
	if len(bad) > 0 {
		return nil, ihos.Invalid(bad)
	}
	if q.Page == 0 {
		q.Page = 1
	}
	if q.PageSize == 0 {
		q.PageSize = 20
	}
	if q.Page > 1_000_000 {
		q.Page = 1_000_000
	}
	cond := strings.Join(where, " AND ")
	page := &Page{Page: q.Page, PageSize: q.PageSize, Items: []Record{}}
	if err := s.count(ctx, gen, r.Table, cond, args, &page.Total); err != nil {
		return nil, err
	}
	if page.Total == 0 || (q.Page-1)*q.PageSize >= page.Total {
		return page, nil
	}
	// The page's ids are found first, from the filter index alone (no table row
	// is read for the rows an OFFSET skips), then only those rows are read, with
	// the display names of their references joined in: one query per page.
	rows, err := s.query(ctx, r.listSQL(s, cond, order), append(args, q.PageSize, (q.Page-1)*q.PageSize)...)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	refs := r.refFields()
	for rows.Next() {
		rec, err := s.scanWithRefs(r, rows, refs)
		if err != nil {
			return nil, err
		}
		page.Items = append(page.Items, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, ihos.Internal(err)
	}
	for _, rec := range page.Items {
		s.present(r, rec)
	}
	return page, nil
}

// count sets *total to the number of live rows of table matching cond, from the
// cache when it was counted in generation gen.
func (s *Store) count(ctx context.Context, gen uint64, table, cond string, args []any, total *int) error {
	key := ""
	if s.ListCacheBytes > 0 {
		key = countKey(table, cond, args)
	}
	if key != "" {
		if n, ok := s.cache.count(gen, key); ok {
			*total = n
			return nil
		}
	}
	rows, err := s.query(ctx, "SELECT COUNT(*) FROM "+table+" WHERE "+cond, args...)
	if err != nil {
		return ihos.Internal(err)
	}
	for rows.Next() {
		err = rows.Scan(total)
	}
	if err == nil {
		err = rows.Err()
	}
	rows.Close()
	if err != nil {
		return ihos.Internal(err)
	}
	if key != "" {
		s.cache.putCount(gen, key, *total)
	}
	return nil
}

// maxStmts bounds the prepared statements a Store keeps: one per distinct list
// query (resource, filter set, search, sort), which the console's lists stay
// well within; past it, queries are prepared each time as before.
const maxStmts = 256

// query runs a read-only list query. On SQLite it keeps the statement prepared
// (on each pooled connection that runs it), since preparing a join costs about
// as much as running it for a page. MySQL is left to the driver: a server-side
// prepared statement per pooled connection would count against the server's
// max_prepared_stmt_count, shared with every other client.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s.DB.Engine != sqldb.SQLite {
		return s.DB.QueryContext(ctx, query, args...)
	}
	s.stmtMu.Lock()
	st := s.stmts[query]
	s.stmtMu.Unlock()
	if st == nil {
		var err error
		if st, err = s.DB.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		s.stmtMu.Lock()
		switch cur := s.stmts[query]; {
		case cur != nil:
			st.Close()
			st = cur
		case len(s.stmts) < maxStmts:
			s.stmts[query] = st
		default:
			// database/sql finalizes it once the rows give back their connection.
			defer st.Close()
		}
		s.stmtMu.Unlock()
	}
	return st.QueryContext(ctx, args...)
}

// listSQL is the page query of List: the ids of the page, in order, from a
// subquery the filter index answers; then their rows and, per Ref field, the
// referenced record's display value (deleted or not, as resolveRefs gives).
func (r *Resource) listSQL(s *Store, cond string, o order) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	for i, c := range r.columns() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("t." + c)
	}
	var joins strings.Builder
	for i, f := range r.refFields() {
		ref := s.byName[f.Ref]
		alias := fmt.Sprintf("r%d", i)
		b.WriteString(", " + alias + "." + ref.Display)
		joins.WriteString(" LEFT JOIN " + ref.Table + " " + alias + " ON " + alias + ".id = t." + f.Name)
	}
	b.WriteString(" FROM (SELECT id FROM " + r.Table + " WHERE " + cond + " ORDER BY " + o.sql("") + " LIMIT ? OFFSET ?) p")
	b.WriteString(" JOIN " + r.Table + " t ON t.id = p.id")
	b.WriteString(joins.String())
	b.WriteString(" ORDER BY " + o.sql("t."))
	return b.String()
}

// refFields returns r's Ref fields in declaration order.
func (r *Resource) refFields() []*Field {
	var refs []*Field
	for i := range r.Fields {
		if r.Fields[i].Type == Ref {
			refs = append(refs, &r.Fields[i])
		}
	}
	return refs
}

// order is a list's sort: a column and a direction; id breaks ties so paging
// is stable.
type order struct {
	key  string
	desc bool
}

func (o order) sql(prefix string) string {
	dir := " ASC"
	if o.desc {
		dir = " DESC"
	}
	return prefix + o.key + dir + ", " + prefix + "id" + dir
}

func (r *Resource) orderBy(sortParam string) (order, string) {
	key := sortParam
	if key == "" {
		key = r.Sort
	}
	desc := strings.HasPrefix(key, "-")
	key = strings.TrimPrefix(key, "-")
	if key == "" {
		key = "created_at"
	}
	ok := key == "created_at" || key == "updated_at"
	if f := r.field(key); f != nil && (f.Sort || sortParam == "") {
		ok = true
	}
	if !ok {
		return order{}, "不能按此字段排序"
	}
	return order{key: key, desc: desc}, ""
}

// scopedDept returns the department an actor is confined to for r, or "".
func scopedDept(ctx context.Context, r *Resource) string {
	a, _ := ihos.ActorFrom(ctx)
	if !a.Scoped {
		return ""
	}
	if a.DepartmentID == "" {
		return "-" // matches no record
	}
	return a.DepartmentID
}

func (s *Store) scan(r *Resource, rows interface{ Scan(...any) error }) (Record, error) {
	return s.scanWithRefs(r, rows, nil)
}

// scanWithRefs scans r's columns followed by the display value of each of
// refs, which it adds as "<field>_name" when the field is set.
func (s *Store) scanWithRefs(r *Resource, rows interface{ Scan(...any) error }, refs []*Field) (Record, error) {
	cols := r.columns()
	vals := make([]any, len(cols)+len(refs))
	for i := range vals {
		vals[i] = new(sql.NullString)
	}
	if err := rows.Scan(vals...); err != nil {
		return nil, ihos.Internal(err)
	}
	rec, err := s.toRecord(r, cols, vals)
	if err != nil {
		return nil, err
	}
	for i, f := range refs {
		if id, _ := rec[f.Name].(string); id != "" {
			rec[f.Name+"_name"] = vals[len(cols)+i].(*sql.NullString).String
		}
	}
	return rec, nil
}

// toRecord turns scanned columns into a Record, opening sealed values.
func (s *Store) toRecord(r *Resource, cols []string, vals []any) (Record, error) {
	rec := Record{}
	for i, c := range cols {
		ns := vals[i].(*sql.NullString)
		switch c {
		case "enabled":
			rec[c] = ns.String == "1"
			continue
		case "version":
			n, _ := toInt(ns.String)
			rec[c] = n
			continue
		case "id", "created_at", "updated_at":
			rec[c] = ns.String
			continue
		}
		f := r.field(c)
		switch f.Type {
		case Int, Money:
			n, _ := toInt(ns.String)
			rec[c] = n
		case Bool:
			rec[c] = ns.String == "1"
		default:
			v := ns.String
			if f.Sensitive && v != "" {
				plain, err := s.Sealer.Open(v)
				if err != nil {
					return nil, ihos.Internal(fmt.Errorf("%s.%s: %w", r.Name, c, err))
				}
				v = plain
			}
			rec[c] = v
		}
	}
	return rec, nil
}

// present prepares a record for display: times in Asia/Shanghai are left to the
// pages; sensitive values are masked.
func (s *Store) present(r *Resource, rec Record) {
	for _, f := range r.Fields {
		if f.Sensitive {
			if v, _ := rec[f.Name].(string); v != "" {
				rec[f.Name] = mask(f, v)
			}
		}
	}
}

func mask(f Field, v string) string {
	if f.Type == IDNumber {
		return pii.Mask(v, 6, 2)
	}
	return pii.Mask(v, 3, 4)
}

// resolveRefs adds "<field>_name" with the referenced record's display value.
func (s *Store) resolveRefs(ctx context.Context, r *Resource, items []Record) error {
	for _, f := range r.Fields {
		if f.Type != Ref {
			continue
		}
		ref := s.byName[f.Ref]
		ids := map[string]bool{}
		for _, rec := range items {
			if id, _ := rec[f.Name].(string); id != "" {
				ids[id] = true
			}
		}
		if len(ids) == 0 {
			continue
		}
		ph := make([]string, 0, len(ids))
		args := make([]any, 0, len(ids))
		for id := range ids {
			ph = append(ph, "?")
			args = append(args, id)
		}
		rows, err := s.DB.QueryContext(ctx, "SELECT id, "+ref.Display+" FROM "+ref.Table+" WHERE id IN ("+strings.Join(ph, ",")+")", args...)
		if err != nil {
			return ihos.Internal(err)
		}
		names := map[string]string{}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return ihos.Internal(err)
			}
			names[id] = name
		}
		rows.Close()
		for _, rec := range items {
			if id, _ := rec[f.Name].(string); id != "" {
				rec[f.Name+"_name"] = names[id]
			}
		}
	}
	return nil
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, r *Resource, id string) (Record, error) {
	if err := s.Auth.Authorize(ctx, r.Perm+".read", ""); err != nil {
		return nil, err
	}
	rec, err := s.load(ctx, s.DB.DB, r, id, "")
	if err != nil {
		return nil, err
	}
	if dept := scopedDept(ctx, r); dept != "" && r.Scope != "" && rec[r.Scope] != dept {
		return nil, notFound(r)
	}
	if err := s.resolveRefs(ctx, r, []Record{rec}); err != nil {
		return nil, err
	}
	s.present(r, rec)
	return rec, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) load(ctx context.Context, q querier, r *Resource, id, suffix string) (Record, error) {
	if id == "" || len(id) > 36 {
		return nil, notFound(r)
	}
	rec, err := s.scan(r, q.QueryRowContext(ctx, "SELECT "+strings.Join(r.columns(), ", ")+" FROM "+r.Table+
		" WHERE id = ? AND deleted_at IS NULL"+suffix, id))
	var e *ihos.Error
	if errors.As(err, &e) && errors.Is(e.Err, sql.ErrNoRows) {
		return nil, notFound(r)
	}
	return rec, err
}

func notFound(r *Resource) error {
	return ihos.Errorf(ihos.ENotFound, "%s不存在或已删除", r.Noun)
}

// Create validates input and inserts a new record.
func (s *Store) Create(ctx context.Context, r *Resource, input map[string]any) (Record, error) {
	if r.ReadOnly {
		return nil, readOnly(r)
	}
	rec, err := s.merge(ctx, r, nil, input)
	if err != nil {
		return nil, err
	}
	if err := s.Auth.Authorize(ctx, r.Perm+".write", s.deptOf(r, rec)); err != nil {
		return nil, err
	}
	id := ihos.NewID()
	now := ihos.FormatTime(time.Now())
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.checkRefsAndUnique(ctx, tx, r, id, rec); err != nil {
			return err
		}
		row, err := s.storedRow(r, rec)
		if err != nil {
			return err
		}
		row["id"], row["enabled"], row["version"], row["created_at"], row["updated_at"] = id, 1, int64(1), now, now
		if v, ok := input["enabled"]; ok {
			if b, msg := normalize(&Field{Type: Bool}, v); msg == "" {
				row["enabled"] = boolInt(b.(bool))
			}
		}
		cols := sortedKeys(row)
		ph := strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
		args := make([]any, len(cols))
		for i, c := range cols {
			args[i] = row[c]
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+r.Table+" ("+strings.Join(cols, ", ")+") VALUES ("+ph+")", args...); err != nil {
			return err
		}
		after, err := s.load(ctx, tx, r, id, "")
		if err != nil {
			return err
		}
		return s.record(ctx, tx, r, "create", id, nil, after, row)
	})
	if err != nil {
		return nil, wrapDB(s.wrapDenied(ctx, err))
	}
	s.afterWrite(ctx, r, id)
	return s.Get(ctx, r, id)
}

// Update changes the fields present in input. input must carry the version the
// client last read; a different current version is a conflict, so two people
// editing one record cannot silently overwrite each other.
func (s *Store) Update(ctx context.Context, r *Resource, id string, input map[string]any) (Record, error) {
	version, ok := toInt(input["version"])
	if !ok {
		return nil, ihos.Invalid(map[string]string{"version": "缺少版本号（version），请先读取记录再修改"})
	}
	err := s.change(ctx, r, id, func(tx *sql.Tx, old Record) error {
		if old["version"].(int64) != version {
			return ihos.Errorf(ihos.EConflict, "该%s已被他人修改，请刷新后重试", r.Noun)
		}
		rec, err := s.merge(ctx, r, old, input)
		if err != nil {
			return err
		}
		if err := s.authorizeRecord(ctx, r, rec); err != nil {
			return err
		}
		if err := s.checkRefsAndUnique(ctx, tx, r, id, rec); err != nil {
			return err
		}
		row, err := s.storedRow(r, rec)
		if err != nil {
			return err
		}
		// Write only what changed: a sealed value whose plain text is the same is
		// not re-encrypted, and the change hook sees exactly the changed columns
		// (sync merges a shared record field by field on them).
		for _, f := range r.Fields {
			if f.Type != Password && rec[f.Name] == old[f.Name] {
				delete(row, f.Name)
				delete(row, f.Name+"_bidx")
			}
		}
		row["version"], row["updated_at"] = version+1, ihos.FormatTime(time.Now())
		return s.writeRow(ctx, tx, r, "update", id, old, row)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, r, id)
}

// SetEnabled enables or disables a record.
func (s *Store) SetEnabled(ctx context.Context, r *Resource, id string, enabled bool) (Record, error) {
	op := "disable"
	if enabled {
		op = "enable"
	}
	err := s.change(ctx, r, id, func(tx *sql.Tx, old Record) error {
		if old["enabled"] == enabled {
			return nil
		}
		row := map[string]any{"enabled": boolInt(enabled), "version": old["version"].(int64) + 1, "updated_at": ihos.FormatTime(time.Now())}
		return s.writeRow(ctx, tx, r, op, id, old, row)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, r, id)
}

// Delete removes a record. The row stays as a tombstone (deleted_at), so the
// deletion replicates and the audit trail keeps pointing at something; a record
// that others still refer to cannot be deleted.
func (s *Store) Delete(ctx context.Context, r *Resource, id string) error {
	if r.NoDelete {
		return ihos.Errorf(ihos.EForbidden, "%s不能删除，请改为停用", r.Noun)
	}
	return s.change(ctx, r, id, func(tx *sql.Tx, old Record) error {
		if err := s.checkNotReferenced(ctx, tx, r, id); err != nil {
			return err
		}
		now := ihos.FormatTime(time.Now())
		row := map[string]any{"deleted_at": now, "version": old["version"].(int64) + 1, "updated_at": now}
		return s.writeRow(ctx, tx, r, "delete", id, old, row)
	})
}

// change is the frame of every change to an existing record: the write
// permission, a write transaction holding the record locked, the department
// scope on the record as it was, then fn; afterwards a refusal is audited and
// the resource's AfterWrite hook runs.
func (s *Store) change(ctx context.Context, r *Resource, id string, fn func(tx *sql.Tx, old Record) error) error {
	if r.ReadOnly {
		return readOnly(r)
	}
	if err := s.Auth.Authorize(ctx, r.Perm+".write", "*"); err != nil {
		return err
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		old, err := s.load(ctx, tx, r, id, s.DB.ForUpdate())
		if err != nil {
			return err
		}
		if err := s.authorizeRecord(ctx, r, old); err != nil {
			return err
		}
		return fn(tx, old)
	})
	if err != nil {
		return wrapDB(s.wrapDenied(ctx, err))
	}
	s.afterWrite(ctx, r, id)
	return nil
}

// authorizeRecord confines department-scoped roles to their own department's
// records, before and after a change.
//
// It runs inside the write transaction, so it only decides: a refusal is
// returned as a *deniedError and audited by wrapDenied after the transaction
// has ended (auditing needs a write transaction of its own, and SQLite has one
// writer: auditing inside would wait for itself).
func (s *Store) authorizeRecord(ctx context.Context, r *Resource, rec Record) error {
	own := scopedDept(ctx, r)
	if own == "" {
		return nil
	}
	if dept := s.deptOf(r, rec); dept != own {
		return &deniedError{perm: r.Perm + ".write", dept: dept}
	}
	return nil
}

func readOnly(r *Resource) error {
	return ihos.Errorf(ihos.EForbidden, "%s由云端维护，院内只能查看", r.Noun)
}

// deniedError is a refusal decided inside a write transaction.
type deniedError struct{ perm, dept string }

func (e *deniedError) Error() string { return "admin: denied " + e.perm + " for department " + e.dept }

// wrapDenied audits a refusal decided inside a transaction, now that it has
// ended, and returns the forbidden error; other errors pass through.
func (s *Store) wrapDenied(ctx context.Context, err error) error {
	var d *deniedError
	if !errors.As(err, &d) {
		return err
	}
	if aerr := s.Auth.Authorize(ctx, d.perm, d.dept); aerr != nil {
		return aerr
	}
	return ihos.Errorf(ihos.EForbidden, "您没有执行此操作的权限")
}

func (s *Store) deptOf(r *Resource, rec Record) string {
	switch r.Scope {
	case "":
		return ""
	case "id":
		id, _ := rec["id"].(string)
		return id
	}
	d, _ := rec[r.Scope].(string)
	return d
}

// writeRow updates columns of one row, then records the change.
func (s *Store) writeRow(ctx context.Context, tx *sql.Tx, r *Resource, op, id string, old Record, row map[string]any) error {
	cols := sortedKeys(row)
	sets := make([]string, len(cols))
	args := make([]any, 0, len(cols)+1)
	for i, c := range cols {
		sets[i] = c + " = ?"
		args = append(args, row[c])
	}
	args = append(args, id)
	if _, err := tx.ExecContext(ctx, "UPDATE "+r.Table+" SET "+strings.Join(sets, ", ")+" WHERE id = ?", args...); err != nil {
		return err
	}
	var after Record
	if op != "delete" {
		var err error
		if after, err = s.load(ctx, tx, r, id, ""); err != nil {
			return err
		}
	}
	return s.record(ctx, tx, r, op, id, old, after, row)
}

// record appends the audit entry and calls the OnWrite hook, in the transaction.
func (s *Store) record(ctx context.Context, tx *sql.Tx, r *Resource, op, id string, before, after Record, row map[string]any) error {
	name := ""
	for _, rec := range []Record{after, before} {
		if rec != nil {
			name, _ = rec[r.Display].(string)
			break
		}
	}
	e := audit.Entry{Action: op, Resource: r.Name, RecordID: id,
		Summary: fmt.Sprintf("%s%s：%s", opLabel(op), r.Noun, name)}
	var err error
	if e.Before, err = s.auditJSON(r, before); err != nil {
		return err
	}
	if e.After, err = s.auditJSON(r, after); err != nil {
		return err
	}
	if err := audit.Append(ctx, s.DB, tx, e); err != nil {
		return err
	}
	if s.OnWrite != nil {
		v, _ := row["version"].(int64)
		return s.OnWrite(ctx, tx, Change{Resource: r, Op: op, ID: id, Version: v, Row: row})
	}
	return nil
}

func (s *Store) auditJSON(r *Resource, rec Record) (json.RawMessage, error) {
	if rec == nil {
		return nil, nil
	}
	c := Record{}
	for k, v := range rec {
		c[k] = v
	}
	s.present(r, c)
	return json.Marshal(c)
}

func opLabel(op string) string {
	switch op {
	case "create":
		return "新增"
	case "update":
		return "修改"
	case "enable":
		return "启用"
	case "disable":
		return "停用"
	case "delete":
		return "删除"
	}
	return op
}

func (s *Store) afterWrite(ctx context.Context, r *Resource, id string) {
	if s.AfterCommit != nil {
		s.AfterCommit()
	}
	if r.AfterWrite != nil {
		if err := r.AfterWrite(ctx, id); err != nil {
			// The change is committed; the follow-up failing must be seen by IT.
			slog.ErrorContext(ctx, "admin: after-write hook failed", "resource", r.Name, "id", id, "err", err)
		}
	}
}

// merge validates input against r and returns the merged record (old values for
// fields input leaves out). System fields and the "<ref>_name" helpers that a
// GET returned are accepted and ignored, so a client can send back what it read.
func (s *Store) merge(ctx context.Context, r *Resource, old Record, input map[string]any) (Record, error) {
	bad := map[string]string{}
	rec := Record{}
	for k, v := range old {
		rec[k] = v
	}
	for k, v := range input {
		f := r.field(k)
		if f == nil {
			if isSystemField(k) || (strings.HasSuffix(k, "_name") && r.field(strings.TrimSuffix(k, "_name")) != nil) {
				continue
			}
			bad[k] = "未知字段"
			continue
		}
		if f.Immutable && old != nil {
			if nv, msg := normalize(f, v); msg == "" && nv != old[k] {
				bad[k] = "创建后不能修改"
			}
			continue
		}
		if f.Sensitive && old != nil {
			// The client saw the masked value; sending it back means "unchanged".
			if sv, _ := v.(string); sv != "" && sv == mask(*f, fmt.Sprint(old[k])) {
				continue
			}
		}
		if f.Type == Password {
			pw, _ := v.(string)
			if pw == "" {
				continue // empty means keep the current password
			}
			h, err := r.HashPassword(pw)
			if err != nil {
				bad[k] = err.Error()
				continue
			}
			rec[k] = h
			continue
		}
		nv, msg := normalize(f, v)
		if msg != "" {
			bad[k] = msg
			continue
		}
		rec[k] = nv
	}
	for _, f := range r.Fields {
		v, present := rec[f.Name]
		if f.Type == Password {
			if old == nil && !present && f.Required && bad[f.Name] == "" {
				bad[f.Name] = "请填写" + f.Label
			}
			continue
		}
		if !present || v == nil {
			rec[f.Name] = zero(f)
			if old == nil && f.Default != nil {
				rec[f.Name] = f.Default
			}
			v = rec[f.Name]
		}
		if f.Required && bad[f.Name] == "" && (v == "" || (f.Type == Ref && v == nil)) {
			bad[f.Name] = "请填写" + f.Label
		}
	}
	if len(bad) == 0 && r.Validate != nil {
		for k, v := range r.Validate(ctx, rec, old) {
			bad[k] = v
		}
	}
	if len(bad) > 0 {
		return nil, ihos.Invalid(bad)
	}
	return rec, nil
}

func zero(f Field) any {
	switch f.Type {
	case Int, Money:
		return int64(0)
	case Bool:
		return false
	}
	return ""
}

func isSystemField(k string) bool {
	switch k {
	case "id", "version", "enabled", "created_at", "updated_at":
		return true
	}
	return false
}

// storedRow turns a record's field values into column values: booleans as 0/1,
// empty optional references as NULL, sensitive values sealed with their blind
// index beside them.
func (s *Store) storedRow(r *Resource, rec Record) (map[string]any, error) {
	row := map[string]any{}
	for _, f := range r.Fields {
		v, ok := rec[f.Name]
		if !ok {
			continue
		}
		switch {
		case f.Type == Password:
			// Only the hash is stored, in "<name>_hash".
			if v != nil {
				row[f.Name+"_hash"] = v
			}
			continue
		case f.Type == Bool:
			v = boolInt(v.(bool))
		case f.Type == Ref && v == "":
			v = nil
		case f.Sensitive:
			plain, _ := v.(string)
			sealed, err := s.Sealer.Seal(plain)
			if err != nil {
				return nil, err
			}
			v = sealed
			row[f.Name+"_bidx"] = s.Sealer.Index(plain)
		}
		row[f.Name] = v
	}
	return row, nil
}

// checkRefsAndUnique checks, inside the write transaction, that references point
// at live records and that unique fields are unique among live records.
func (s *Store) checkRefsAndUnique(ctx context.Context, tx *sql.Tx, r *Resource, id string, rec Record) error {
	bad := map[string]string{}
	for _, f := range r.Fields {
		v := rec[f.Name]
		if f.Type == Ref {
			ref, _ := v.(string)
			if ref == "" {
				continue
			}
			if ref == id {
				bad[f.Name] = "不能引用自身"
				continue
			}
			target := s.byName[f.Ref]
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+target.Table+" WHERE id = ? AND deleted_at IS NULL", ref).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				bad[f.Name] = f.Label + "不存在或已删除"
			}
		}
		if f.Unique {
			col, val := f.Name, v
			if f.Sensitive {
				col, val = f.Name+"_bidx", s.Sealer.Index(fmt.Sprint(v))
			}
			if val == "" {
				continue
			}
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+r.Table+" WHERE "+col+" = ? AND id <> ? AND deleted_at IS NULL", val, id).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				bad[f.Name] = f.Label + "已被使用"
			}
		}
	}
	if len(bad) > 0 {
		return &ihos.Error{Code: ihos.EConflict, Message: "与已有数据冲突，请检查标出的字段", Fields: bad}
	}
	return nil
}

// checkNotReferenced refuses to delete a record that live records refer to.
func (s *Store) checkNotReferenced(ctx context.Context, tx *sql.Tx, r *Resource, id string) error {
	for _, other := range s.resources {
		for _, f := range other.Fields {
			if f.Type != Ref || f.Ref != r.Name {
				continue
			}
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+other.Table+" WHERE "+f.Name+" = ? AND deleted_at IS NULL", id).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return ihos.Errorf(ihos.EConflict, "该%s下还有 %d 条%s（%s），请先处理后再删除", r.Noun, n, other.Noun, f.Label)
			}
		}
	}
	return nil
}

func wrapDB(err error) error {
	var e *ihos.Error
	if errors.As(err, &e) {
		return e
	}
	if sqldb.IsUniqueViolation(err) {
		return ihos.Errorf(ihos.EConflict, "与已有数据重复")
	}
	return ihos.Internal(err)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
