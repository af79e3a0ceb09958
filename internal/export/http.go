package export

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"ihos"
)

// Formats of a download, as the format query parameter names them.
const (
	CSV  = "csv"
	XLSX = "xlsx"
)

// Format reads the format parameter of r: csv (the default) or xlsx.
func Format(r *http.Request) (string, error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", CSV:
		return CSV, nil
	case XLSX:
		return XLSX, nil
	}
	return "", ihos.Invalid(map[string]string{"format": "导出格式应为 csv 或 xlsx"})
}

// Write answers with the tables as a download named name plus the format's
// extension. The whole file is built first, so an error still answers as
// JSON, not as half a file.
func Write(w http.ResponseWriter, format, name string, tables ...Table) error {
	var buf bytes.Buffer
	var err error
	ctype := "text/csv; charset=utf-8"
	if format == XLSX {
		ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		err = WriteXLSX(&buf, tables...)
	} else {
		err = WriteCSV(&buf, tables...)
	}
	if err != nil {
		return ihos.Internal(err)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", ContentDisposition(name+"."+format))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}

// ContentDisposition is an attachment header for a file name that may be
// Chinese: an ASCII fallback in filename (non-ASCII replaced by _) and the
// real name in filename* (RFC 5987/6266), which every current browser uses.
func ContentDisposition(name string) string {
	var ascii, enc strings.Builder
	for _, r := range name {
		if r < 0x80 && r >= 0x20 && r != '"' && r != '\\' {
			ascii.WriteRune(r)
		} else {
			ascii.WriteByte('_')
		}
	}
	for _, b := range []byte(name) {
		if b < 0x80 && (b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$&+-.^_`|~", b) >= 0) {
			enc.WriteByte(b)
		} else {
			fmt.Fprintf(&enc, "%%%02X", b)
		}
	}
	return `attachment; filename="` + ascii.String() + `"; filename*=UTF-8''` + enc.String()
}
