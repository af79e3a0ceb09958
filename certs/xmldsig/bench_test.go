package xmldsig

import (
	"strconv"
	"strings"
	"testing"
)

// bigCDA repeats the diagnosis section of cdaDoc until the document is about
// size bytes: the shape of a long inpatient record.
func bigCDA(size int) string {
	const start, end = "      <component>\n        <section>", "</section>\n      </component>\n"
	i := strings.Index(cdaDoc, start)
	j := strings.Index(cdaDoc, end) + len(end)
	section := cdaDoc[i:j]
	var b strings.Builder
	b.WriteString(cdaDoc[:j])
	for b.Len() < size {
		b.WriteString(section)
	}
	b.WriteString(cdaDoc[j:])
	return b.String()
}

func BenchmarkSign(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		doc := bigCDA(size)
		for _, s := range testSigners(b)[:2] {
			b.Run(s.name+"/"+byteSize(len(doc)), func(b *testing.B) {
				b.SetBytes(int64(len(doc)))
				for i := 0; i < b.N; i++ {
					mustSign(b, doc, s, Options{})
				}
			})
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		doc := bigCDA(size)
		for _, s := range testSigners(b)[:2] {
			signed := mustSign(b, doc, s, Options{})
			b.Run(s.name+"/"+byteSize(len(doc)), func(b *testing.B) {
				b.SetBytes(int64(len(signed)))
				for i := 0; i < b.N; i++ {
					if _, err := Verify(signed, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<20 {
		return strconv.Itoa(n>>20) + "MB"
	}
	return strconv.Itoa(n>>10) + "KB"
}
