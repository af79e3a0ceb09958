package tickets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"time"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/ticketimage"
)

// draft is a template being edited in the console, kept briefly so the
// preview image can be fetched with GET: the console's Content-Security-Policy
// allows images from the site only, not blob: URLs.
type draft struct {
	kind, source string
	at           time.Time
}

const (
	maxDrafts = 64
	draftTTL  = 30 * time.Minute
)

// PutDraft checks source as a template of kind (see Check) and keeps it for
// Preview; it returns the draft's id, derived from the content.
func (s *Store) PutDraft(kind, source string) (string, error) {
	source = strings.ReplaceAll(source, "\r\n", "\n")
	if err := Check(kind, source); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(kind + "\x00" + source))
	id := hex.EncodeToString(sum[:16])
	now := time.Now()
	s.draftMu.Lock()
	defer s.draftMu.Unlock()
	if s.drafts == nil {
		s.drafts = map[string]draft{}
	}
	for k, d := range s.drafts {
		if now.Sub(d.at) > draftTTL {
			delete(s.drafts, k)
		}
	}
	for len(s.drafts) >= maxDrafts {
		oldest := ""
		for k, d := range s.drafts {
			if oldest == "" || d.at.Before(s.drafts[oldest].at) {
				oldest = k
			}
		}
		delete(s.drafts, oldest)
	}
	s.drafts[id] = draft{kind: kind, source: source, at: now}
	return id, nil
}

// Preview renders the sample ticket of kind for paper as a PNG image, the
// way the printer would print it: with the draft draftID when given, else
// with the template in force.
func (s *Store) Preview(ctx context.Context, kind string, paperMM int, draftID string) ([]byte, error) {
	b, err := s.previewBytes(ctx, kind, Format{PaperMM: paperMM}, draftID)
	if err != nil {
		return nil, err
	}
	return PreviewPNG(b, Format{PaperMM: paperMM})
}

func (s *Store) previewBytes(ctx context.Context, kind string, f Format, draftID string) ([]byte, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	if draftID == "" {
		return s.Render(ctx, Sample(kind), f)
	}
	s.draftMu.Lock()
	d, ok := s.drafts[draftID]
	s.draftMu.Unlock()
	if !ok || d.kind != kind {
		return nil, ihos.Errorf(ihos.ENotFound, "预览已过期，请重新编辑")
	}
	c, err := parseTemplate(kind, d.source)
	if err != nil {
		return nil, err
	}
	return render(c, Sample(kind), f, s.Hospital, s.Logo)
}

// PreviewPNG decodes ESC/POS bytes as the printer simulator does and draws
// them as printed paper.
func PreviewPNG(b []byte, f Format) ([]byte, error) {
	width, err := f.widthDots()
	if err != nil {
		return nil, err
	}
	t, err := escpos.Decode(b, f.CodePage)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	png, err := ticketimage.PNG(t, width)
	if err != nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "无法生成预览图片：%v", err)
	}
	return png, nil
}

// FieldHelp describes a field a template of some kind can print.
type FieldHelp struct {
	Name  string      // as written in a template: .PatientName
	Type  string      // 文字, 金额（分）, 时间, 数字, 列表
	Label string      // what it holds, in Chinese
	Sub   []FieldHelp // the fields of each element of a list
}

// Fields lists the fields of kind's data for the editor's help box, from
// the struct's label tags.
func Fields(kind string) []FieldHelp {
	t := Sample(kind)
	if t == nil {
		return nil
	}
	return fieldsOf(reflect.TypeOf(t).Elem())
}

func fieldsOf(t reflect.Type) []FieldHelp {
	var out []FieldHelp
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		h := FieldHelp{Name: "." + f.Name, Label: f.Tag.Get("label")}
		switch {
		case f.Type == reflect.TypeOf(time.Time{}):
			h.Type = "时间"
		case f.Type.Kind() == reflect.Int64:
			h.Type = "金额（分）"
		case f.Type.Kind() == reflect.Int:
			h.Type = "数字"
		case f.Type.Kind() == reflect.Slice:
			h.Type = "列表"
			h.Sub = fieldsOf(f.Type.Elem())
		default:
			h.Type = "文字"
		}
		out = append(out, h)
	}
	return out
}
