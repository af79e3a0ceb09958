package tickets

import (
	"embed"
	"image"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/internal/pii"
)

//go:embed templates/*.tmpl
var defaultFS embed.FS

// DefaultSource returns the built-in template of kind ("" for an unknown
// kind).
func DefaultSource(kind string) string {
	b, err := defaultFS.ReadFile("templates/" + kind + ".tmpl")
	if err != nil {
		return ""
	}
	return string(b)
}

var (
	defaultsOnce sync.Once
	defaults     map[string]*compiled
)

// defaultTemplate returns the parsed built-in template of kind. A broken
// built-in template is a bug and panics (the golden tests catch it).
func defaultTemplate(kind string) (*compiled, error) {
	defaultsOnce.Do(func() {
		defaults = map[string]*compiled{}
		for _, k := range Kinds {
			c, err := parseTemplate(k, DefaultSource(k))
			if err != nil {
				panic("tickets: built-in template " + k + ": " + err.Error())
			}
			defaults[k] = c
		}
	})
	c, ok := defaults[kind]
	if !ok {
		return nil, ihos.Errorf(ihos.EInvalid, "未知的票据类型 %q", kind)
	}
	return c, nil
}

// Render renders t with the built-in default template of its kind (no
// database).
func Render(t Ticket, f Format) ([]byte, error) {
	if t == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "没有票据内容")
	}
	c, err := defaultTemplate(t.TicketKind())
	if err != nil {
		return nil, err
	}
	return render(c, t, f, "", nil)
}

// Parse checks source as a template of kind without rendering it; errors
// are *ihos.Error EInvalid with the line number.
func Parse(kind, source string) error {
	if Title(kind) == "" {
		return ihos.Errorf(ihos.EInvalid, "未知的票据类型 %q", kind)
	}
	_, err := parseTemplate(kind, source)
	return err
}

// RenderSource renders t with a template given as source (the console's
// preview of a draft).
func RenderSource(source string, t Ticket, f Format) ([]byte, error) {
	if t == nil {
		return nil, ihos.Errorf(ihos.EInvalid, "没有票据内容")
	}
	c, err := parseTemplate(t.TicketKind(), source)
	if err != nil {
		return nil, err
	}
	return render(c, t, f, "", nil)
}

// renderState is the reusable memory of one rendering.
type renderState struct {
	out    limitedBuffer
	pieces []string
}

var statePool = sync.Pool{New: func() any { return new(renderState) }}

// printerKey selects a pool of printers: a Printer keeps its width and
// code page.
type printerKey struct {
	width    int
	codePage string
}

var printerPools sync.Map // printerKey → *sync.Pool of *escpos.Printer

func getPrinter(k printerKey) (*escpos.Printer, *sync.Pool) {
	v, ok := printerPools.Load(k)
	if !ok {
		v, _ = printerPools.LoadOrStore(k, &sync.Pool{New: func() any {
			return escpos.New(io.Discard, escpos.Options{Width: k.width, CodePage: k.codePage})
		}})
	}
	pool := v.(*sync.Pool)
	p := pool.Get().(*escpos.Printer)
	p.Reset()
	return p, pool
}

// render executes c with t and lays the result out for f. hospital fills an
// empty Hospital field; logo is printed by @logo.
func render(c *compiled, t Ticket, f Format, hospital string, logo image.Image) ([]byte, error) {
	if t.TicketKind() != c.kind {
		return nil, ihos.Errorf(ihos.EInvalid, "票据类型不符：模板是 %s，票据是 %s", c.kind, t.TicketKind())
	}
	width, err := f.widthDots()
	if err != nil {
		return nil, err
	}
	switch f.CodePage {
	case "":
		f.CodePage = escpos.CodePageGB18030
	case escpos.CodePageGB18030, escpos.CodePageGBK:
	default:
		return nil, ihos.Errorf(ihos.EInvalid, "不支持的代码页 %q（可选 GB18030、GBK）", f.CodePage)
	}
	data, err := prepare(t, f, hospital)
	if err != nil {
		return nil, err
	}
	clean(reflect.ValueOf(data).Elem())
	st := statePool.Get().(*renderState)
	defer statePool.Put(st)
	st.out.b = st.out.b[:0]
	if err := c.execute(&st.out, data); err != nil {
		return nil, err
	}
	p, pool := getPrinter(printerKey{width, f.CodePage})
	defer pool.Put(p)
	l := layout{p: p, widthDots: width, cols: width / dotsPerCol, logo: logo, pieces: st.pieces[:0]}
	err = l.run(st.out.b)
	st.pieces = l.pieces[:0]
	if err != nil {
		return nil, err
	}
	if err := p.Err(); err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "票据无法生成：%v", err)
	}
	return append([]byte(nil), p.Bytes()...), nil
}

// prepare returns a pointer to a copy of t as the template sees it: the
// hospital filled in, identity numbers, phones and addresses masked, a test
// page's format filled in.
func prepare(t Ticket, f Format, hospital string) (any, error) {
	fill := func(h *string) {
		if *h == "" {
			*h = hospital
		}
	}
	switch v := t.(type) {
	case Registration:
		return prepare(&v, f, hospital)
	case *Registration:
		c := *v
		fill(&c.Hospital)
		c.IDNumber = maskOnce(c.IDNumber, 6, 4)
		c.Phone = maskOnce(c.Phone, 3, 4)
		return &c, nil
	case Receipt:
		return prepare(&v, f, hospital)
	case *Receipt:
		c := *v
		fill(&c.Hospital)
		return &c, nil
	case Invoice:
		return prepare(&v, f, hospital)
	case *Invoice:
		c := *v
		fill(&c.Hospital)
		return &c, nil
	case Report:
		return prepare(&v, f, hospital)
	case *Report:
		c := *v
		fill(&c.Hospital)
		return &c, nil
	case Prescription:
		return prepare(&v, f, hospital)
	case *Prescription:
		c := *v
		fill(&c.Hospital)
		return &c, nil
	case NursingOrder:
		return prepare(&v, f, hospital)
	case *NursingOrder:
		c := *v
		fill(&c.Hospital)
		c.Phone = maskOnce(c.Phone, 3, 4)
		c.Address = maskAddress(c.Address)
		return &c, nil
	case TestPage:
		return prepare(&v, f, hospital)
	case *TestPage:
		c := *v
		fill(&c.Hospital)
		if c.PaperMM == 0 {
			c.PaperMM = f.PaperMM
		}
		if c.CodePage == "" {
			c.CodePage = f.CodePage
		}
		return &c, nil
	}
	return nil, ihos.Errorf(ihos.EInvalid, "未知的票据类型 %T", t)
}

// maskOnce masks s unless the caller already did.
func maskOnce(s string, head, tail int) string {
	if s == "" || strings.Contains(s, "*") {
		return s
	}
	return pii.Mask(s, head, tail)
}

// maskAddress keeps the first six characters of an address (the city and
// district) and hides the street and door number.
func maskAddress(s string) string {
	if s == "" || strings.Contains(s, "*") {
		return s
	}
	if n := utf8.RuneCountInString(s); n <= 6 {
		return s
	}
	r := []rune(s)
	return string(r[:6]) + "****"
}

// clean replaces control characters in every string of the struct v (a
// copy the caller owns) with spaces, so data can neither break a line nor
// start a directive or a column. Slices shared with the caller are copied
// before a change.
func clean(v reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			if s := f.String(); dirty(s) {
				f.SetString(cleanString(s))
			}
		case reflect.Slice:
			if f.Type().Elem().Kind() != reflect.Struct || !dirtySlice(f) {
				continue
			}
			c := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(c, f)
			for j := 0; j < c.Len(); j++ {
				clean(c.Index(j))
			}
			f.Set(c)
		}
	}
}

func dirtySlice(s reflect.Value) bool {
	for j := 0; j < s.Len(); j++ {
		e := s.Index(j)
		for i := 0; i < e.NumField(); i++ {
			if f := e.Field(i); f.Kind() == reflect.String && dirty(f.String()) {
				return true
			}
		}
	}
	return false
}

func dirty(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7F {
			return true
		}
	}
	return false
}

func cleanString(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7F {
			return ' '
		}
		return r
	}, s)
}
