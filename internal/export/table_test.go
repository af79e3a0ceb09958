package export

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ihos/internal/export/exporttest"
)

func TestXLSXRoundTrip(t *testing.T) {
	wide := make([]any, 28) // past Z
	for i := range wide {
		wide[i] = i
	}
	tables := []Table{
		{Name: "支付订单", Header: []string{"患者", "金额(元)", "笔数"}, Rows: [][]any{
			{"张三", Yuan(1250), 3},
			{`<&> "引号" 'x'`, Yuan(-5), int64(1 << 40)},
			{"  前后空格  ", Yuan(0), nil},
			{"控制\x01字符\n换行", Yuan(100_000_000_01), 0},
		}},
		{Name: "按日/按科室: [x]*?", Rows: [][]any{wide}},
		{Name: "支付订单"}, // a duplicate name gets another
	}
	var buf bytes.Buffer
	if err := WriteXLSX(&buf, tables...); err != nil {
		t.Fatal(err)
	}
	names, sheets := exporttest.ReadXLSX(t, buf.Bytes())
	if len(names) != 3 || names[0] != "支付订单" || names[1] != "按日_按科室_ _x___" || names[2] != "Sheet3" {
		t.Fatalf("sheet names %q", names)
	}
	s := sheets[0]
	want := map[string]exporttest.Cell{
		"A1": {Text: "患者", Style: "2"}, "B1": {Text: "金额(元)", Style: "2"}, "C1": {Text: "笔数", Style: "2"},
		"A2": {Text: "张三"}, "B2": {Text: "12.50", Number: true, Style: "1"}, "C2": {Text: "3", Number: true},
		"A3": {Text: `<&> "引号" 'x'`}, "B3": {Text: "-0.05", Number: true, Style: "1"}, "C3": {Text: "1099511627776", Number: true},
		"A4": {Text: "  前后空格  "}, "B4": {Text: "0.00", Number: true, Style: "1"},
		"A5": {Text: "控制\uFFFD字符\n换行"}, "B5": {Text: "100000000.01", Number: true, Style: "1"}, "C5": {Text: "0", Number: true},
	}
	for ref, w := range want {
		if got := s[ref]; got != w {
			t.Errorf("%s = %+v, want %+v", ref, got, w)
		}
	}
	if len(s) != len(want) {
		t.Errorf("%d cells, want %d (nil cells are left out): %v", len(s), len(want), s)
	}
	if c := sheets[1]["AB1"]; c.Text != "27" || !c.Number {
		t.Errorf("AB1 = %+v", c)
	}
	if len(sheets[2]) != 0 {
		t.Errorf("empty sheet has %v", sheets[2])
	}

	// Python's zipfile (when there) agrees it is a sound zip with the parts.
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Log("no python3: skipping the zipfile check")
		return
	}
	path := filepath.Join(t.TempDir(), "t.xlsx")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", `import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(" ".join(sorted(z.namelist())))`, path).CombinedOutput()
	if err != nil {
		t.Fatalf("python zipfile: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "[Content_Types].xml _rels/.rels xl/_rels/workbook.xml.rels xl/styles.xml xl/workbook.xml xl/worksheets/sheet1.xml xl/worksheets/sheet2.xml xl/worksheets/sheet3.xml" {
		t.Errorf("python sees %s", got)
	}
}

func TestColumnName(t *testing.T) {
	for i, want := range map[int]string{0: "A", 25: "Z", 26: "AA", 27: "AB", 51: "AZ", 52: "BA", 701: "ZZ", 702: "AAA"} {
		if got := ColumnName(i); got != want {
			t.Errorf("ColumnName(%d) = %s, want %s", i, got, want)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	var buf bytes.Buffer
	err := WriteCSV(&buf,
		Table{Name: "汇总", Header: []string{"科室", "金额(元)"}, Rows: [][]any{{"内科", Yuan(1234)}, {"=1+1", Yuan(5)}, {"a,\"b\"", 7}}},
		Table{Name: "按日", Header: []string{"日期"}, Rows: [][]any{{"2025-03-10"}}})
	if err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if !bytes.HasPrefix(b, []byte("\xEF\xBB\xBF")) {
		t.Fatalf("no BOM: % x", b[:6])
	}
	recs, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err == nil {
		t.Fatalf("sections of different widths should not parse as one table: %q", recs)
	}
	r := csv.NewReader(bytes.NewReader(b[3:]))
	r.FieldsPerRecord = -1
	recs, err = r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"汇总"}, {"科室", "金额(元)"}, {"内科", "12.34"}, {"'=1+1", "0.05"}, {"a,\"b\"", "7"}, {"按日"}, {"日期"}, {"2025-03-10"}}
	if len(recs) != len(want) {
		t.Fatalf("records %q", recs)
	}
	for i := range want {
		if strings.Join(recs[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("record %d %q, want %q", i, recs[i], want[i])
		}
	}
	if !bytes.Contains(b, []byte("7\r\n\r\n按日\r\n")) {
		t.Errorf("lines should end in CRLF, an empty line between tables: %q", b)
	}
}

func TestContentDisposition(t *testing.T) {
	got := ContentDisposition("医保运营统计_2025-03-01至2025-03-31.xlsx")
	want := `attachment; filename="_______2025-03-01_2025-03-31.xlsx"; filename*=UTF-8''%E5%8C%BB%E4%BF%9D%E8%BF%90%E8%90%A5%E7%BB%9F%E8%AE%A1_2025-03-01%E8%87%B32025-03-31.xlsx`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := ContentDisposition(`a"b\c d.csv`); got != `attachment; filename="a_b_c d.csv"; filename*=UTF-8''a%22b%5Cc%20d.csv` {
		t.Errorf("quotes: %s", got)
	}
}
