package payments

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// xlsxCell is a cell as read back: its text and whether it was a number.
type xlsxCell struct {
	Text   string
	Number bool
	Style  string
}

// readXLSX opens a workbook the way a spreadsheet program does: through
// [Content_Types].xml, _rels/.rels, the workbook and its relationships to
// each sheet. It checks every part is well-formed XML and returns the sheets
// in order with their cells by reference (A1, B2…).
func readXLSX(t *testing.T, data []byte) (names []string, sheets []map[string]xlsxCell) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	parts := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		parts[f.Name] = b
		dec := xml.NewDecoder(bytes.NewReader(b))
		for {
			if _, err := dec.Token(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("%s is not well-formed XML: %v", f.Name, err)
			}
		}
	}
	for _, name := range []string{"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels", "xl/styles.xml"} {
		if parts[name] == nil {
			t.Fatalf("part %s missing; have %v", name, keys(parts))
		}
	}
	type rel struct {
		ID     string `xml:"Id,attr"`
		Type   string `xml:"Type,attr"`
		Target string `xml:"Target,attr"`
	}
	var types struct {
		Overrides []struct {
			PartName    string `xml:"PartName,attr"`
			ContentType string `xml:"ContentType,attr"`
		} `xml:"Override"`
	}
	must(t, xml.Unmarshal(parts["[Content_Types].xml"], &types))
	ctypes := map[string]string{}
	for _, o := range types.Overrides {
		ctypes[o.PartName] = o.ContentType
	}
	var root struct {
		Rels []rel `xml:"Relationship"`
	}
	must(t, xml.Unmarshal(parts["_rels/.rels"], &root))
	if len(root.Rels) != 1 || root.Rels[0].Target != "xl/workbook.xml" || root.Rels[0].Type != relDocument {
		t.Fatalf("_rels/.rels %+v", root.Rels)
	}
	if ctypes["/xl/workbook.xml"] != ctWorkbook || ctypes["/xl/styles.xml"] != ctStyles {
		t.Fatalf("content types %v", ctypes)
	}
	var wbRels struct {
		Rels []rel `xml:"Relationship"`
	}
	must(t, xml.Unmarshal(parts["xl/_rels/workbook.xml.rels"], &wbRels))
	targets := map[string]string{}
	for _, r := range wbRels.Rels {
		targets[r.ID] = r.Target
	}
	var wb struct {
		Sheets []struct {
			Name string `xml:"name,attr"`
			RID  string `xml:"http://schemas.openxmlformats.org/officeDocument/2006/relationships id,attr"`
		} `xml:"sheets>sheet"`
	}
	must(t, xml.Unmarshal(parts["xl/workbook.xml"], &wb))
	for _, s := range wb.Sheets {
		path := "xl/" + targets[s.RID]
		if parts[path] == nil || ctypes["/"+path] != ctSheet {
			t.Fatalf("sheet %q (%s): part %s missing or of type %q", s.Name, s.RID, path, ctypes["/"+path])
		}
		var ws struct {
			Rows []struct {
				R     string `xml:"r,attr"`
				Cells []struct {
					R  string `xml:"r,attr"`
					T  string `xml:"t,attr"`
					S  string `xml:"s,attr"`
					V  string `xml:"v"`
					IS string `xml:"is>t"`
				} `xml:"c"`
			} `xml:"sheetData>row"`
		}
		must(t, xml.Unmarshal(parts[path], &ws))
		cells := map[string]xlsxCell{}
		for _, row := range ws.Rows {
			for _, c := range row.Cells {
				if !strings.HasSuffix(c.R, row.R) {
					t.Errorf("cell %s in row %s", c.R, row.R)
				}
				if c.T == "inlineStr" {
					cells[c.R] = xlsxCell{Text: c.IS, Style: c.S}
				} else {
					cells[c.R] = xlsxCell{Text: c.V, Number: true, Style: c.S}
				}
			}
		}
		names = append(names, s.Name)
		sheets = append(sheets, cells)
	}
	return names, sheets
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

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
	names, sheets := readXLSX(t, buf.Bytes())
	if len(names) != 3 || names[0] != "支付订单" || names[1] != "按日_按科室_ _x___" || names[2] != "Sheet3" {
		t.Fatalf("sheet names %q", names)
	}
	s := sheets[0]
	want := map[string]xlsxCell{
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
	must(t, os.WriteFile(path, buf.Bytes(), 0o644))
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
