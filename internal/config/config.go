// Package config loads a service's configuration: defaults set in code, then an
// optional JSON file, then environment variables, each overriding the one before.
//
// A hospital's IT staff edit the file by hand, so Load is strict: an unknown field
// is an error (a misspelt "htpp" must not silently leave the default in place),
// and every error names the file, the line and the field, in Chinese. Durations are
// written as strings with a unit ("30s", "5m") in the file and in variables, never
// as bare numbers, which encoding/json would read as nanoseconds.
//
// A config type looks like this:
//
//	type Config struct {
//		HTTP    string        `json:"http" env:"IHOS_HTTP"`
//		Timeout time.Duration `json:"timeout" env:"IHOS_TIMEOUT"`
//		Broker  struct {
//			Listen string `json:"listen" env:"IHOS_BROKER_LISTEN"`
//		} `json:"broker"`
//	}
package config

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// Load fills v (a pointer to a struct that already holds the defaults) from the
// JSON file at path, then from the environment variables named by `env:"..."`
// struct tags. A missing file is fine unless required is set (the operator named
// the file explicitly, so it must exist); path "" skips the file.
//
// Variables may set fields of type string, bool, int, int8–int64,
// time.Duration ("30s") and []string (comma-separated, items trimmed); nested
// structs and non-nil pointers to structs are searched for tags too. A variable
// that is set but empty is ignored, like an unset one, so `IHOS_HTTP=` in an
// environment file keeps the default.
//
// Errors are *ihos.Error with code ihos.EInvalid (ihos.ENotFound for a required
// file that does not exist) and a message for the operator.
func Load(path string, required bool, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return ihos.Internal(fmt.Errorf("config.Load: want a non-nil pointer to a struct, got %T", v))
	}
	if err := checkEnvTags(rv.Elem().Type(), map[reflect.Type]bool{}); err != nil {
		return ihos.Internal(err)
	}
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !required:
			// Defaults and environment only.
		case errors.Is(err, fs.ErrNotExist):
			return &ihos.Error{Code: ihos.ENotFound, Message: fmt.Sprintf("配置文件 %s 不存在", path), Err: err}
		case err != nil:
			return &ihos.Error{Code: ihos.EInvalid, Message: fmt.Sprintf("无法读取配置文件 %s：%v", path, err), Err: err}
		default:
			if err := decodeFile(path, data, rv.Elem()); err != nil {
				return err
			}
		}
	} else if required {
		return ihos.Errorf(ihos.EInvalid, "未指定配置文件")
	}
	return loadEnv(rv.Elem())
}

// fileError is an error at a place in the config file.
func fileError(path string, data []byte, offset int64, field, msg string, cause error) *ihos.Error {
	where := fmt.Sprintf("配置文件 %s 第 %d 行", path, lineAt(data, offset))
	if field != "" {
		where += "，字段 " + field
	}
	return &ihos.Error{Code: ihos.EInvalid, Message: where + "：" + msg, Err: cause}
}

// lineAt returns the 1-based line of the first token at or after offset.
func lineAt(data []byte, offset int64) int {
	if offset < 0 {
		offset = 0
	}
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	// Decoder offsets point just past the previous token; skip to the next one.
	for offset < int64(len(data)) && strings.IndexByte(" \t\r\n:,", data[offset]) >= 0 {
		offset++
	}
	if offset == int64(len(data)) && offset > 0 {
		offset-- // the error is at the end: report the last line, not the one after it
	}
	return 1 + bytes.Count(data[:offset], []byte("\n"))
}

// decodeFile decodes the JSON document data into the struct rv.
//
// It walks the document itself instead of calling json.Unmarshal once so that it
// knows the offset of every key (for line numbers), can reject unknown keys with
// their full path, and can read durations as "30s". Values that are not structs
// are decoded by encoding/json, field by field.
func decodeFile(path string, data []byte, rv reflect.Value) error {
	// Windows Notepad starts UTF-8 files with a byte order mark, which JSON forbids.
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		var off int64 = int64(len(data))
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			off = se.Offset - 1 // Offset is just after the bad byte
		}
		return fileError(path, data, off, "", "不是有效的 JSON："+syntaxText(err), err)
	}
	d := &fileDecoder{path: path, data: data}
	start := int64(bytes.Index(data, raw)) // raw is data without surrounding white space
	return d.object(raw, start, rv, "")
}

// syntaxText turns encoding/json's syntax error into a hint an operator can act on.
func syntaxText(err error) string {
	msg := err.Error()
	hints := []struct{ match, hint string }{
		{"unexpected end of JSON input", "内容不完整（缺少括号或引号？）"},
		{"after object key:value pair", "缺少逗号（上一项末尾？）"},
		{"after array element", "列表中缺少逗号"},
		{"after object key", "字段名后缺少冒号"},
		{"looking for beginning of object key string", "应为带双引号的字段名（最后一项后多了逗号？）"},
		{"looking for beginning of value", "值无效（字符串要加双引号，最后一项后不能有逗号）"},
		{"in string literal", "字符串中有无效字符（路径中的 \\ 要写成 \\\\）"},
		{"in string escape code", "字符串中有无效的转义（路径中的 \\ 要写成 \\\\）"},
	}
	for _, h := range hints {
		if strings.Contains(msg, h.match) {
			return h.hint
		}
	}
	return msg
}

type fileDecoder struct {
	path string
	data []byte
}

var (
	durationType      = reflect.TypeFor[time.Duration]()
	jsonUnmarshaler   = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerTy = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walkable reports whether a value of type t is a struct that decodeFile walks
// key by key, rather than handing it to encoding/json.
func walkable(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	pt := reflect.PointerTo(t)
	return !pt.Implements(jsonUnmarshaler) && !pt.Implements(textUnmarshalerTy)
}

// object decodes the JSON object raw, which starts at offset start in the file,
// into the struct rv. prefix is the field path of rv ("broker.").
func (d *fileDecoder) object(raw []byte, start int64, rv reflect.Value, prefix string) error {
	if len(raw) == 0 || raw[0] != '{' {
		return fileError(d.path, d.data, start, strings.TrimSuffix(prefix, "."), "应为对象 {…}，实为 "+jsonKind(raw), nil)
	}
	fields := structFields(rv.Type())
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return fileError(d.path, d.data, start, prefix, "不是有效的 JSON", err)
	}
	seen := map[string]int64{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fileError(d.path, d.data, start+dec.InputOffset(), prefix, "不是有效的 JSON", err)
		}
		key := tok.(string) // the document is valid JSON, so keys are strings
		keyOff := start + dec.InputOffset() - 1
		name := prefix + key

		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return fileError(d.path, d.data, keyOff, name, "不是有效的 JSON", err)
		}
		valueOff := start + dec.InputOffset() - int64(len(value))

		f, ok := lookupField(fields, key)
		if !ok {
			return fileError(d.path, d.data, keyOff, "", fmt.Sprintf("未知字段 %q（%s）", name, knownFields(fields)), nil)
		}
		if prev, dup := seen[f.name]; dup {
			return fileError(d.path, d.data, keyOff, name,
				fmt.Sprintf("重复设置（第 %d 行已设置过）", lineAt(d.data, prev)), nil)
		}
		seen[f.name] = keyOff
		if err := d.value(value, valueOff, fieldByIndex(rv, f.index), name); err != nil {
			return err
		}
	}
	return nil
}

// value decodes one JSON value into fv.
func (d *fileDecoder) value(raw []byte, off int64, fv reflect.Value, name string) error {
	if string(raw) == "null" {
		return nil // as encoding/json: null leaves the default
	}
	t := fv.Type()
	switch {
	case walkable(t):
		return d.object(raw, off, fv, name+".")
	case t.Kind() == reflect.Pointer && walkable(t.Elem()):
		if fv.IsNil() {
			fv.Set(reflect.New(t.Elem()))
		}
		return d.object(raw, off, fv.Elem(), name+".")
	case t == durationType:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fileError(d.path, d.data, off, name, `应为带单位的时长字符串，如 "30s"、"5m"、"1h"，实为 `+jsonKind(raw), err)
		}
		dur, err := time.ParseDuration(s)
		if err != nil {
			return fileError(d.path, d.data, off, name, fmt.Sprintf(`时长 %q 无效，应如 "30s"、"5m"、"1h"`, s), err)
		}
		fv.SetInt(int64(dur))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(fv.Addr().Interface()); err != nil {
		msg := "应为" + typeText(t) + "，实为 " + jsonKind(raw)
		if _, perr := strconv.ParseInt(string(raw), 10, 64); perr == nil && isInt(t) {
			msg = fmt.Sprintf("数值 %s 超出%s的范围", raw, typeText(t))
		} else if (raw[0] == '{' || raw[0] == '[') && (t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array) {
			// A wrong element somewhere inside: pass on encoding/json's detail.
			msg = "内容无效：" + err.Error()
		}
		return fileError(d.path, d.data, off, name, msg, err)
	}
	return nil
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// jsonKind names the kind of a JSON value for error messages.
func jsonKind(raw []byte) string {
	if len(raw) == 0 {
		return "空"
	}
	switch raw[0] {
	case '{':
		return "对象"
	case '[':
		return "列表"
	case '"':
		return "字符串 " + string(raw)
	case 't', 'f':
		return "布尔值 " + string(raw)
	case 'n':
		return "null"
	}
	return "数字 " + string(raw)
}

// typeText names a Go type in words an operator understands.
func typeText(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "字符串"
	case reflect.Bool:
		return "布尔值 true 或 false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "整数"
	case reflect.Float32, reflect.Float64:
		return "数字"
	case reflect.Slice, reflect.Array:
		return typeText(t.Elem()) + "列表"
	case reflect.Map, reflect.Struct:
		return "对象"
	case reflect.Pointer:
		return typeText(t.Elem())
	}
	return t.String()
}

// field is a struct field as it appears in JSON.
type field struct {
	name  string // the JSON key
	index []int  // for reflect.Value.FieldByIndex, through embedded structs
}

// structFields lists the JSON fields of struct type t as encoding/json sees them:
// exported fields named by their json tag or Go name, "-" skipped, fields of
// untagged embedded structs promoted.
func structFields(t reflect.Type) []field {
	var fields []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for _, f := range structFields(ft) {
					f.index = append([]int{i}, f.index...)
					fields = append(fields, f)
				}
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		fields = append(fields, field{name: name, index: []int{i}})
	}
	return fields
}

// lookupField finds the field for a JSON key: an exact match first, then one
// ignoring case, as encoding/json does.
func lookupField(fields []field, key string) (field, bool) {
	for _, f := range fields {
		if f.name == key {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.name, key) {
			return f, true
		}
	}
	return field{}, false
}

func knownFields(fields []field) string {
	if len(fields) == 0 {
		return "此处没有可设置的字段"
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return "可用字段：" + strings.Join(names, "、")
}

// fieldByIndex is reflect.Value.FieldByIndex, allocating nil embedded pointers.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// checkEnvTags reports env tags on fields of types Load cannot set from a
// variable: a programming error, found on every Load, not only when a hospital
// happens to set the variable.
func checkEnvTags(t reflect.Type, visiting map[reflect.Type]bool) error {
	if visiting[t] {
		return nil
	}
	visiting[t] = true
	defer delete(visiting, t)
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		ft := sf.Type
		if ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
			ft = ft.Elem()
		}
		name, ok := sf.Tag.Lookup("env")
		switch {
		case ok && (name == "" || !envSettable(sf.Type)):
			return fmt.Errorf("config: field %s.%s: env tag %q on unsupported type %s", t, sf.Name, name, sf.Type)
		case ok && !sf.IsExported():
			return fmt.Errorf("config: field %s.%s: env tag on unexported field", t, sf.Name)
		case !ok && ft.Kind() == reflect.Struct && reachable(sf):
			if err := checkEnvTags(ft, visiting); err != nil {
				return err
			}
		}
	}
	return nil
}

// reachable reports whether loadEnv looks for tags inside the struct field sf:
// exported fields, and embedded structs (not pointers), whose exported fields
// reflect can set even when the embedded type is unexported.
func reachable(sf reflect.StructField) bool {
	return sf.IsExported() || sf.Anonymous && sf.Type.Kind() == reflect.Struct
}

func envSettable(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	case reflect.Slice:
		return t.Elem().Kind() == reflect.String
	}
	return false
}

// loadEnv sets the tagged fields of the struct rv from the environment.
func loadEnv(rv reflect.Value) error {
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		fv := rv.Field(i)
		name, ok := sf.Tag.Lookup("env")
		if !ok {
			switch {
			case !reachable(sf):
			case sf.Type.Kind() == reflect.Struct:
				if err := loadEnv(fv); err != nil {
					return err
				}
			case sf.Type.Kind() == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Struct && !fv.IsNil():
				if err := loadEnv(fv.Elem()); err != nil {
					return err
				}
			}
			continue
		}
		s, ok := os.LookupEnv(name)
		if !ok || s == "" {
			continue
		}
		if err := setFromString(fv, s); err != nil {
			return &ihos.Error{
				Code:    ihos.EInvalid,
				Message: fmt.Sprintf("环境变量 %s 的值 %q 无效：%s", name, s, err.Error()),
			}
		}
	}
	return nil
}

// setFromString sets fv from the text of an environment variable. Its errors are
// the operator-facing reason.
func setFromString(fv reflect.Value, s string) error {
	t := fv.Type()
	if t == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return errors.New(`应为带单位的时长，如 "30s"、"5m"、"1h"`)
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		fv.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return errors.New("应为 true 或 false（也可写 1 或 0）")
		}
		fv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, t.Bits())
		if errors.Is(err, strconv.ErrRange) {
			return errors.New("超出整数范围")
		} else if err != nil {
			return errors.New("应为整数")
		}
		fv.SetInt(n)
	case reflect.Slice: // of strings; checked by checkEnvTags
		var items []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			v.Index(i).SetString(item)
		}
		fv.Set(v)
	default:
		return fmt.Errorf("unsupported type %s", t) // unreachable: checked by checkEnvTags
	}
	return nil
}
