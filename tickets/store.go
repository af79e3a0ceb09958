package tickets

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"strings"
	"sync"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Store renders tickets with the hospital's edited templates (table
// ticket_templates), falling back to the built-in default of each kind.
// Parsed templates are cached; Save and Reset in this process refresh the
// cache (the appliance is the only writer of its database).
type Store struct {
	DB       *sqldb.DB
	Hospital string      // hospital name printed in headers when a ticket has none
	Logo     image.Image // printed by @logo; optional

	mu    sync.Mutex
	cache map[string]*compiled // kind → the template in force

	draftMu sync.Mutex
	drafts  map[string]draft // see preview.go
}

// Template is the template of a kind as the console shows it.
type Template struct {
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Source    string    `json:"source"`
	Default   bool      `json:"default"` // Source is the built-in default
	Version   int       `json:"version"` // 0 = never edited
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Version is one entry of a template's history.
type Version struct {
	Version   int       `json:"version"`
	Action    string    `json:"action"` // save, reset
	Source    string    `json:"source"` // "" = the built-in default
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

func checkKind(kind string) error {
	if Title(kind) == "" {
		return ihos.Errorf(ihos.EInvalid, "未知的票据类型 %q", kind)
	}
	return nil
}

// Render renders t with the template in force for its kind.
func (s *Store) Render(ctx context.Context, t Ticket, f Format) ([]byte, error) {
	if t == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "没有票据内容")
	}
	c, err := s.compiled(ctx, t.TicketKind())
	if err != nil {
		return nil, err
	}
	return render(c, t, f, s.Hospital, s.Logo)
}

// compiled returns the parsed template in force for kind.
func (s *Store) compiled(ctx context.Context, kind string) (*compiled, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	s.mu.Lock()
	c := s.cache[kind]
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	tpl, err := s.Template(ctx, kind)
	if err != nil {
		return nil, err
	}
	if tpl.Default {
		c, err = defaultTemplate(kind)
	} else if c, err = parseTemplate(kind, tpl.Source); err != nil {
		// Saved templates were checked; one that no longer parses (a
		// function removed in a new release) must not stop printing.
		c, err = defaultTemplate(kind)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.cache == nil {
		s.cache = map[string]*compiled{}
	}
	s.cache[kind] = c
	s.mu.Unlock()
	return c, nil
}

func (s *Store) forget(kind string) {
	s.mu.Lock()
	delete(s.cache, kind)
	s.mu.Unlock()
}

// Template returns the template in force for kind.
func (s *Store) Template(ctx context.Context, kind string) (Template, error) {
	if err := checkKind(kind); err != nil {
		return Template{}, err
	}
	t := Template{Kind: kind, Title: Title(kind)}
	var at string
	err := s.DB.QueryRowContext(ctx, `SELECT source, version, updated_by, updated_at FROM ticket_templates WHERE kind = ?`, kind).
		Scan(&t.Source, &t.Version, &t.UpdatedBy, &at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Template{}, fmt.Errorf("tickets: read template: %w", err)
	}
	if at != "" {
		t.UpdatedAt, _ = ihos.ParseTime(at)
	}
	if t.Source == "" {
		t.Source, t.Default = DefaultSource(kind), true
	}
	return t, nil
}

// Check parses source as a template of kind and renders Sample(kind) with
// it on every paper width, so a template that saves also prints. The
// error is *ihos.Error EInvalid with a Chinese message naming the line.
func Check(kind, source string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	if strings.TrimSpace(source) == "" {
		return ihos.Errorf(ihos.EInvalid, "模板不能为空；要恢复默认模板请点“恢复默认”")
	}
	c, err := parseTemplate(kind, source)
	if err != nil {
		return err
	}
	for _, mm := range Papers {
		if _, err := render(c, Sample(kind), Format{PaperMM: mm}, sampleHospital, nil); err != nil {
			return ihos.Errorf(ihos.EInvalid, "用示例数据按 %d mm 纸宽打印时出错：%s", mm, ihos.ErrorMessage(err))
		}
	}
	return nil
}

// Save checks source (see Check) and makes it the template of kind, keeping
// the previous one in the history; audited.
func (s *Store) Save(ctx context.Context, kind, source string) (Template, error) {
	source = strings.ReplaceAll(source, "\r\n", "\n")
	if err := Check(kind, source); err != nil {
		return Template{}, err
	}
	if err := s.put(ctx, kind, source, "save"); err != nil {
		return Template{}, err
	}
	return s.Template(ctx, kind)
}

// Reset makes kind print with the built-in default again; audited.
func (s *Store) Reset(ctx context.Context, kind string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	return s.put(ctx, kind, "", "reset")
}

func (s *Store) put(ctx context.Context, kind, source, action string) error {
	actor, _ := ihos.ActorFrom(ctx)
	by := actor.Username
	if by == "" {
		by = ihos.System.Username
	}
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		var old string
		version := 0
		err := tx.QueryRowContext(ctx, `SELECT source, version FROM ticket_templates WHERE kind = ?`+s.DB.ForUpdate(), kind).Scan(&old, &version)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if action == "reset" && old == "" {
			return ihos.Errorf(ihos.EConflict, "“%s”已经是默认模板", Title(kind))
		}
		version++
		now := ihos.FormatTime(time.Now())
		if exists {
			_, err = tx.ExecContext(ctx, `UPDATE ticket_templates SET source = ?, version = ?, updated_by = ?, updated_at = ? WHERE kind = ?`,
				source, version, by, now, kind)
		} else {
			_, err = tx.ExecContext(ctx, `INSERT INTO ticket_templates (kind, source, version, updated_by, updated_at) VALUES (?, ?, ?, ?, ?)`,
				kind, source, version, by, now)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO ticket_template_versions (id, kind, version, action, source, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ihos.NewID(), kind, version, action, source, by, now); err != nil {
			return err
		}
		summary := fmt.Sprintf("修改票据模板“%s”（第 %d 版）", Title(kind), version)
		if action == "reset" {
			summary = fmt.Sprintf("票据模板“%s”恢复默认（第 %d 版）", Title(kind), version)
		}
		before, _ := json.Marshal(map[string]any{"source": old, "version": version - 1})
		after, _ := json.Marshal(map[string]any{"source": source, "version": version})
		return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "update", Resource: "ticket_templates", RecordID: kind,
			Summary: summary, Before: before, After: after})
	})
	s.forget(kind)
	return err
}

// History lists the saved versions of kind, newest first.
func (s *Store) History(ctx context.Context, kind string, limit int) ([]Version, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT version, action, source, created_by, created_at FROM ticket_template_versions
		WHERE kind = ? ORDER BY version DESC LIMIT ?`, kind, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Version
	for rows.Next() {
		var v Version
		var at string
		if err := rows.Scan(&v.Version, &v.Action, &v.Source, &v.CreatedBy, &at); err != nil {
			return nil, err
		}
		v.CreatedAt, _ = ihos.ParseTime(at)
		out = append(out, v)
	}
	return out, rows.Err()
}
