// Package export writes the console's downloads: tables of text, counts and
// amounts as CSV or as an Excel workbook, answered as an attachment. The
// payment statistics and the online-visit reports build their tables and
// leave the file format to this package, so every download looks the same.
package export

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"ihos"
)

// Yuan is an amount in fen that a table shows in yuan with two decimals: a
// number cell formatted 0.00 in XLSX, "12.50" in CSV.
type Yuan int64

// Table is one sheet of an export: a name, a header row and rows of cells.
// A cell is a string, an int or int64 (a plain number), or a Yuan.
type Table struct {
	Name   string
	Header []string
	Rows   [][]any
}

// WriteCSV writes tables as UTF-8 CSV with a byte order mark, so Excel opens
// the Chinese text correctly. Several tables follow each other, each after a
// line with its name and separated by an empty line.
func WriteCSV(w io.Writer, tables ...Table) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true // what Excel writes and expects
	for i, t := range tables {
		if len(tables) > 1 {
			if i > 0 {
				cw.Write(nil)
			}
			cw.Write([]string{t.Name})
		}
		if len(t.Header) > 0 {
			cw.Write(t.Header)
		}
		for _, row := range t.Rows {
			rec := make([]string, len(row))
			for j, c := range row {
				rec[j] = csvCell(c)
			}
			cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}

func csvCell(c any) string {
	switch v := c.(type) {
	case Yuan:
		return ihos.FormatYuan(int64(v))
	case string:
		// A text starting like a formula would run as one in a spreadsheet
		// (CSV injection): a leading apostrophe keeps it text.
		if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
			return "'" + v
		}
		return v
	case nil:
		return ""
	}
	return fmt.Sprint(c)
}

// Office Open XML namespaces and content types.
const (
	nsMain      = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
	nsRel       = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
	nsPkgRel    = "http://schemas.openxmlformats.org/package/2006/relationships"
	relDocument = nsRel + "/officeDocument"
	relSheet    = nsRel + "/worksheet"
	relStyles   = nsRel + "/styles"
	ctWorkbook  = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
	ctSheet     = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
	ctStyles    = "application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"
)

// Cell styles (cellXfs indexes in stylesXML).
const (
	styleDefault = 0
	styleYuan    = 1 // built-in number format 2: 0.00
	styleHeader  = 2 // bold
)

const stylesXML = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="` + nsMain + `">` +
	`<fonts count="2"><font><sz val="11"/><name val="宋体"/><charset val="134"/></font><font><b/><sz val="11"/><name val="宋体"/><charset val="134"/></font></fonts>` +
	`<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>` +
	`<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>` +
	`<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>` +
	`<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>` +
	`<xf numFmtId="2" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>` +
	`<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>` +
	`<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>` +
	`</styleSheet>`

// WriteXLSX writes tables as an Excel workbook, one worksheet per table: the
// minimal Office Open XML package ([Content_Types].xml, the relationships,
// xl/workbook.xml, xl/styles.xml and xl/worksheets/sheetN.xml), with text as
// inline strings and amounts as numbers formatted 0.00, so they add up in
// Excel. Written by hand to need no spreadsheet library.
func WriteXLSX(w io.Writer, tables ...Table) error {
	if len(tables) == 0 {
		tables = []Table{{Name: "Sheet1"}}
	}
	zw := zip.NewWriter(w)
	put := func(name, content string) error {
		f, err := zw.Create(name)
		if err != nil {
			return err
		}
		_, err = io.WriteString(f, content)
		return err
	}
	const head = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n"

	var types, sheets, rels strings.Builder
	types.WriteString(head + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
		`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
		`<Default Extension="xml" ContentType="application/xml"/>` +
		`<Override PartName="/xl/workbook.xml" ContentType="` + ctWorkbook + `"/>` +
		`<Override PartName="/xl/styles.xml" ContentType="` + ctStyles + `"/>`)
	rels.WriteString(head + `<Relationships xmlns="` + nsPkgRel + `">`)
	used := map[string]bool{}
	for i, t := range tables {
		n := strconv.Itoa(i + 1)
		types.WriteString(`<Override PartName="/xl/worksheets/sheet` + n + `.xml" ContentType="` + ctSheet + `"/>`)
		rels.WriteString(`<Relationship Id="rId` + n + `" Type="` + relSheet + `" Target="worksheets/sheet` + n + `.xml"/>`)
		sheets.WriteString(`<sheet name="` + escape(sheetName(t.Name, i, used)) + `" sheetId="` + n + `" r:id="rId` + n + `"/>`)
	}
	types.WriteString(`</Types>`)
	rels.WriteString(`<Relationship Id="rId` + strconv.Itoa(len(tables)+1) + `" Type="` + relStyles + `" Target="styles.xml"/></Relationships>`)

	parts := []struct{ name, content string }{
		{"[Content_Types].xml", types.String()},
		{"_rels/.rels", head + `<Relationships xmlns="` + nsPkgRel + `"><Relationship Id="rId1" Type="` + relDocument + `" Target="xl/workbook.xml"/></Relationships>`},
		{"xl/workbook.xml", head + `<workbook xmlns="` + nsMain + `" xmlns:r="` + nsRel + `"><sheets>` + sheets.String() + `</sheets></workbook>`},
		{"xl/_rels/workbook.xml.rels", rels.String()},
		{"xl/styles.xml", stylesXML},
	}
	for _, p := range parts {
		if err := put(p.name, p.content); err != nil {
			return err
		}
	}
	for i, t := range tables {
		if err := put("xl/worksheets/sheet"+strconv.Itoa(i+1)+".xml", head+sheetXML(t)); err != nil {
			return err
		}
	}
	return zw.Close()
}

// sheetName makes a valid, unique worksheet name: at most 31 characters,
// none of []:*?/\.
func sheetName(name string, i int, used map[string]bool) string {
	name = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`[]:*?/\`, r) {
			return '_'
		}
		return r
	}, strings.TrimSpace(name))
	if r := []rune(name); len(r) > 31 {
		name = string(r[:31])
	}
	if name == "" || used[strings.ToLower(name)] {
		name = "Sheet" + strconv.Itoa(i+1)
	}
	used[strings.ToLower(name)] = true
	return name
}

func sheetXML(t Table) string {
	var b strings.Builder
	b.WriteString(`<worksheet xmlns="` + nsMain + `" xmlns:r="` + nsRel + `">`)
	if len(t.Header) > 0 {
		// The header stays in view while scrolling.
		b.WriteString(`<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>`)
	}
	widths := columnWidths(t)
	if len(widths) > 0 {
		b.WriteString(`<cols>`)
		for i, w := range widths {
			fmt.Fprintf(&b, `<col min="%d" max="%d" width="%d" customWidth="1"/>`, i+1, i+1, w)
		}
		b.WriteString(`</cols>`)
	}
	b.WriteString(`<sheetData>`)
	r := 0
	row := func(cells []any, header bool) {
		r++
		fmt.Fprintf(&b, `<row r="%d">`, r)
		for j, c := range cells {
			ref := ColumnName(j) + strconv.Itoa(r)
			switch v := c.(type) {
			case nil:
			case Yuan:
				fmt.Fprintf(&b, `<c r="%s" s="%d"><v>%s</v></c>`, ref, styleYuan, ihos.FormatYuan(int64(v)))
			case int:
				fmt.Fprintf(&b, `<c r="%s"><v>%d</v></c>`, ref, v)
			case int64:
				fmt.Fprintf(&b, `<c r="%s"><v>%d</v></c>`, ref, v)
			default:
				s := fmt.Sprint(v)
				style := styleDefault
				if header {
					style = styleHeader
				}
				fmt.Fprintf(&b, `<c r="%s" t="inlineStr"`, ref)
				if style != styleDefault {
					fmt.Fprintf(&b, ` s="%d"`, style)
				}
				b.WriteString(`><is><t xml:space="preserve">` + escape(s) + `</t></is></c>`)
			}
		}
		b.WriteString(`</row>`)
	}
	if len(t.Header) > 0 {
		h := make([]any, len(t.Header))
		for i, s := range t.Header {
			h[i] = s
		}
		row(h, true)
	}
	for _, cells := range t.Rows {
		row(cells, false)
	}
	b.WriteString(`</sheetData></worksheet>`)
	return b.String()
}

// columnWidths sizes each column to its longest cell, a Chinese character
// counting two, between 8 and 60.
func columnWidths(t Table) []int {
	var w []int
	see := func(j int, s string) {
		for len(w) <= j {
			w = append(w, 8)
		}
		n := 2
		for _, r := range s {
			if r >= 0x2E80 {
				n += 2
			} else {
				n++
			}
		}
		w[j] = min(max(w[j], n), 60)
	}
	for j, s := range t.Header {
		see(j, s)
	}
	for _, cells := range t.Rows {
		for j, c := range cells {
			see(j, csvCell(c))
		}
	}
	return w
}

// ColumnName is the spreadsheet name of column i (from 0): A … Z, AA, AB …
func ColumnName(i int) string {
	var b []byte
	for i++; i > 0; i = (i - 1) / 26 {
		b = append([]byte{byte('A' + (i-1)%26)}, b...)
	}
	return string(b)
}

// escape escapes text for XML; characters XML cannot hold become U+FFFD.
func escape(s string) string {
	var b bytes.Buffer
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r != utf8.RuneError && r != 0xFFFE && r != 0xFFFF) {
			return r
		}
		return '\uFFFD'
	}, s)
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
