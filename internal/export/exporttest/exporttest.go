// Package exporttest reads back what package export writes, for tests of the
// downloads: a workbook is opened the way a spreadsheet program opens it.
package exporttest

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// The Office Open XML names a workbook must use, spelled out here rather
// than taken from package export so the reader checks the writer.
const (
	relDocument = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
	ctWorkbook  = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
	ctSheet     = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
	ctStyles    = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
)

// Cell is a cell as read back: its text, whether it was a number, and its
// style index.
type Cell struct {
	Text   string
	Number bool
	Style  string
}

// ReadXLSX opens a workbook the way a spreadsheet program does: through
// [Content_Types].xml, _rels/.rels, the workbook and its relationships to
// each sheet. It checks every part is well-formed XML and returns the sheets
// in order with their cells by reference (A1, B2…).
func ReadXLSX(t *testing.T, data []byte) (names []string, sheets []map[string]Cell) {
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
		cells := map[string]Cell{}
		for _, row := range ws.Rows {
			for _, c := range row.Cells {
				if !strings.HasSuffix(c.R, row.R) {
					t.Errorf("cell %s in row %s", c.R, row.R)
				}
				if c.T == "inlineStr" {
					cells[c.R] = Cell{Text: c.IS, Style: c.S}
				} else {
					cells[c.R] = Cell{Text: c.V, Number: true, Style: c.S}
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
