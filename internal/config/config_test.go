package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"ihos"
)

type Broker struct {
	Listen string `json:"listen" env:"IHOS_TEST_BROKER_LISTEN"`
	Domain string `json:"domain"`
}

type Embedded struct {
	Region string `json:"region" env:"IHOS_TEST_REGION"`
}

type testConfig struct {
	Embedded
	HTTP     string            `json:"http" env:"IHOS_TEST_HTTP"`
	Debug    bool              `json:"debug" env:"IHOS_TEST_DEBUG"`
	Workers  int               `json:"workers" env:"IHOS_TEST_WORKERS"`
	Small    int8              `json:"small" env:"IHOS_TEST_SMALL"`
	MaxBytes int64             `json:"max_bytes" env:"IHOS_TEST_MAX_BYTES"`
	Timeout  time.Duration     `json:"timeout" env:"IHOS_TEST_TIMEOUT"`
	Origins  []string          `json:"origins" env:"IHOS_TEST_ORIGINS"`
	Broker   Broker            `json:"broker"`
	Printer  *Broker           `json:"printer"`
	Labels   map[string]string `json:"labels"`
	Rooms    []Broker          `json:"rooms"`
	Ratio    float64           `json:"ratio"`
	NoTag    string
	Ignored  string `json:"-"`
	secret   string
}

func defaults() testConfig {
	return testConfig{
		HTTP:    ":8080",
		Workers: 4,
		Timeout: 30 * time.Second,
		Origins: []string{"https://a.example"},
		Broker:  Broker{Listen: "", Domain: "h1"},
	}
}

// writeFile writes content to a config file in a temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ihos.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultsOnly(t *testing.T) {
	c := defaults()
	missing := filepath.Join(t.TempDir(), "absent.json")
	if err := Load(missing, false, &c); err != nil {
		t.Fatal(err)
	}
	if err := Load("", false, &c); err != nil {
		t.Fatal(err)
	}
	if want := defaults(); !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want the defaults %+v", c, want)
	}
}

func TestRequiredFileMissing(t *testing.T) {
	c := defaults()
	missing := filepath.Join(t.TempDir(), "absent.json")
	err := Load(missing, true, &c)
	if ihos.ErrorCode(err) != ihos.ENotFound || !strings.Contains(ihos.ErrorMessage(err), missing) {
		t.Errorf("got %v, want not_found naming %s", err, missing)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%v does not wrap os.ErrNotExist", err)
	}
}

func TestFile(t *testing.T) {
	path := writeFile(t, `{
  "http": "127.0.0.1:9000",
  "debug": true,
  "workers": 16,
  "small": -7,
  "max_bytes": 10737418240,
  "timeout": "1m30s",
  "origins": ["https://b.example", "https://c.example"],
  "broker": {"listen": "127.0.0.1:4333"},
  "printer": {"domain": "p"},
  "labels": {"k": "v"},
  "rooms": [{"listen": "x"}],
  "ratio": 0.5,
  "NoTag": "n",
  "region": "华东"
}`)
	c := defaults()
	if err := Load(path, true, &c); err != nil {
		t.Fatal(err)
	}
	want := testConfig{
		Embedded: Embedded{Region: "华东"},
		HTTP:     "127.0.0.1:9000",
		Debug:    true,
		Workers:  16,
		Small:    -7,
		MaxBytes: 10 << 30,
		Timeout:  90 * time.Second,
		Origins:  []string{"https://b.example", "https://c.example"},
		Broker:   Broker{Listen: "127.0.0.1:4333", Domain: "h1"}, // domain keeps its default
		Printer:  &Broker{Domain: "p"},
		Labels:   map[string]string{"k": "v"},
		Rooms:    []Broker{{Listen: "x"}},
		Ratio:    0.5,
		NoTag:    "n",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestNullKeepsDefault(t *testing.T) {
	path := writeFile(t, `{"http": null, "broker": null, "timeout": null}`)
	c := defaults()
	if err := Load(path, true, &c); err != nil {
		t.Fatal(err)
	}
	if want := defaults(); !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want the defaults", c)
	}
}

func TestFileWithBOM(t *testing.T) {
	path := writeFile(t, "\xef\xbb\xbf{\"http\": \":1\"}")
	c := defaults()
	if err := Load(path, true, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTP != ":1" {
		t.Errorf("HTTP = %q", c.HTTP)
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // all in the message
	}{
		{"unknown field", "{\n  \"http\": \":1\",\n  \"htpp\": \":2\"\n}", []string{"第 3 行", `未知字段 "htpp"`, "http"}},
		{"unknown nested field", "{\n  \"broker\": {\n    \"listen\": \"\",\n    \"lisen\": \"x\"\n  }\n}", []string{"第 4 行", `未知字段 "broker.lisen"`, "listen、domain"}},
		{"unknown field in pointer struct", `{"printer": {"x": 1}}`, []string{"第 1 行", `"printer.x"`}},
		{"unknown field in list", "{\n\"rooms\": [\n{\"listen\": \"a\"},\n{\"lisen\": \"b\"}]}", []string{"第 2 行", "rooms", "lisen"}},
		{"ignored field", `{"Ignored": "x"}`, []string{`未知字段 "Ignored"`}},
		{"unexported field", `{"secret": "x"}`, []string{`未知字段 "secret"`}},
		{"duplicate", "{\"http\": \":1\",\n\"HTTP\": \":2\"}", []string{"第 2 行", "重复设置", "第 1 行"}},
		{"syntax", "{\n  \"http\": \":1\"\n  \"debug\": true\n}", []string{"第 3 行", "不是有效的 JSON", "缺少逗号"}},
		{"trailing comma", "{\n  \"http\": \":1\",\n}", []string{"第 3 行", "多了逗号"}},
		{"windows path", `{"http": "C:\ihos"}`, []string{"第 1 行", `\\`}},
		{"truncated", "{\n  \"http\": \":1\",\n", []string{"第 2 行", "不完整"}},
		{"empty", "", []string{"不完整"}},
		{"not an object", `["http"]`, []string{"应为对象"}},
		{"string for bool", `{"debug": "yes"}`, []string{"字段 debug", "应为布尔值", `"yes"`}},
		{"number for string", "{\n\"http\": 8080}", []string{"第 2 行", "字段 http", "应为字符串", "8080"}},
		{"float for int", `{"workers": 1.5}`, []string{"字段 workers", "应为整数"}},
		{"overflow", `{"small": 300}`, []string{"字段 small", "300", "超出"}},
		{"bare duration", `{"timeout": 30}`, []string{"字段 timeout", `"30s"`}},
		{"bad duration", `{"timeout": "30 seconds"}`, []string{"字段 timeout", `"30 seconds"`}},
		{"string for list", `{"origins": "https://a"}`, []string{"字段 origins", "字符串列表"}},
		{"nested wrong type", "{\"broker\": {\n\"listen\": 1}}", []string{"第 2 行", "字段 broker.listen", "应为字符串"}},
		{"scalar for struct", `{"broker": "x"}`, []string{"字段 broker", "应为对象"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			c := defaults()
			err := Load(path, true, &c)
			if ihos.ErrorCode(err) != ihos.EInvalid {
				t.Fatalf("got %v, want an invalid error", err)
			}
			msg := ihos.ErrorMessage(err)
			for _, want := range append(tt.want, path) {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want func(*testConfig)
	}{
		{map[string]string{"IHOS_TEST_HTTP": "0.0.0.0:80"}, func(c *testConfig) { c.HTTP = "0.0.0.0:80" }},
		{map[string]string{"IHOS_TEST_HTTP": ""}, func(c *testConfig) {}}, // empty = unset
		{map[string]string{"IHOS_TEST_DEBUG": "true"}, func(c *testConfig) { c.Debug = true }},
		{map[string]string{"IHOS_TEST_DEBUG": "1"}, func(c *testConfig) { c.Debug = true }},
		{map[string]string{"IHOS_TEST_WORKERS": " 12 "}, func(c *testConfig) { c.Workers = 12 }},
		{map[string]string{"IHOS_TEST_WORKERS": "-3"}, func(c *testConfig) { c.Workers = -3 }},
		{map[string]string{"IHOS_TEST_SMALL": "127"}, func(c *testConfig) { c.Small = 127 }},
		{map[string]string{"IHOS_TEST_MAX_BYTES": "9000000000"}, func(c *testConfig) { c.MaxBytes = 9e9 }},
		{map[string]string{"IHOS_TEST_TIMEOUT": "250ms"}, func(c *testConfig) { c.Timeout = 250 * time.Millisecond }},
		{map[string]string{"IHOS_TEST_ORIGINS": "https://x, https://y,,"}, func(c *testConfig) { c.Origins = []string{"https://x", "https://y"} }},
		{map[string]string{"IHOS_TEST_BROKER_LISTEN": "127.0.0.1:4333"}, func(c *testConfig) { c.Broker.Listen = "127.0.0.1:4333" }},
		{map[string]string{"IHOS_TEST_REGION": "华南"}, func(c *testConfig) { c.Region = "华南" }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(mapKeys(tt.env), ","), func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := defaults()
			if err := Load("", false, &got); err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func mapKeys(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestEnvOverridesFile(t *testing.T) {
	path := writeFile(t, `{"http": ":1", "broker": {"listen": "127.0.0.1:1"}}`)
	t.Setenv("IHOS_TEST_HTTP", ":2")
	c := defaults()
	if err := Load(path, true, &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTP != ":2" || c.Broker.Listen != "127.0.0.1:1" {
		t.Errorf("HTTP = %q, Broker.Listen = %q", c.HTTP, c.Broker.Listen)
	}
}

func TestEnvIntoPointerStruct(t *testing.T) {
	t.Setenv("IHOS_TEST_BROKER_LISTEN", "unused")
	type cfg struct {
		P *struct {
			X string `env:"IHOS_TEST_PX"`
		}
	}
	t.Setenv("IHOS_TEST_PX", "x")
	var c cfg
	if err := Load("", false, &c); err != nil || c.P != nil {
		t.Errorf("nil pointer: %v, %+v", err, c.P)
	}
	c.P = &struct {
		X string `env:"IHOS_TEST_PX"`
	}{}
	if err := Load("", false, &c); err != nil || c.P.X != "x" {
		t.Errorf("non-nil pointer: %v, %+v", err, c.P)
	}
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"IHOS_TEST_DEBUG", "yes", "true 或 false"},
		{"IHOS_TEST_WORKERS", "many", "整数"},
		{"IHOS_TEST_WORKERS", "1.5", "整数"},
		{"IHOS_TEST_SMALL", "300", "超出"},
		{"IHOS_TEST_MAX_BYTES", "99999999999999999999", "超出"},
		{"IHOS_TEST_TIMEOUT", "30", "时长"},
		{"IHOS_TEST_BROKER_LISTEN", "", ""}, // empty: ignored, no error
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Setenv(tt.name, tt.value)
			c := defaults()
			err := Load("", false, &c)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if ihos.ErrorCode(err) != ihos.EInvalid {
				t.Fatalf("got %v, want an invalid error", err)
			}
			msg := ihos.ErrorMessage(err)
			for _, want := range []string{tt.name, tt.value, tt.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("message %q lacks %q", msg, want)
				}
			}
		})
	}
}

// TestBadTarget: programming errors are reported whatever the environment holds.
func TestBadTarget(t *testing.T) {
	type badType struct {
		F float64 `env:"IHOS_TEST_F"`
	}
	type badNested struct {
		Inner struct {
			M map[string]string `env:"IHOS_TEST_M"`
		}
	}
	type emptyTag struct {
		S string `env:""`
	}
	type unexported struct {
		s string `env:"IHOS_TEST_S"`
	}
	var s string
	for _, v := range []any{nil, s, &s, testConfig{}, (*testConfig)(nil), &badType{}, &badNested{}, &emptyTag{}, &unexported{}} {
		if err := Load("", false, v); ihos.ErrorCode(err) != ihos.EInternal {
			t.Errorf("Load(%T): got %v, want an internal error", v, err)
		}
	}
	_ = unexported{}.s
}
