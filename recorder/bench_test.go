package recorder

import (
	"context"
	"path/filepath"
	"testing"

	"ihos/internal/sqldb/sqldbtest"
	"ihos/recorder/recordersim"
)

// BenchmarkImport measures import throughput from a local folder: copy in
// 1 MiB chunks with journal checkpoints every 8 MiB, SM3 of the source
// stream, re-read and SM3 of the copy, rename and commit. MB/s is per byte
// of footage.
func BenchmarkImport(b *testing.B) {
	src := b.TempDir()
	files, err := recordersim.Generate(src, recordersim.Options{Seed: 1, Count: 8, MinSize: 16 << 20, MaxSize: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	b.SetBytes(total)
	for b.Loop() {
		b.StopTimer()
		s := &Service{DB: sqldbtest.SQLite(b), Dir: filepath.Join(b.TempDir(), "recordings")}
		b.StartTimer()
		imp, err := s.ImportFolder(context.Background(), src, SourceUSB)
		if err != nil || imp.FilesNew != len(files) {
			b.Fatalf("%+v %v", imp, err)
		}
	}
}

// BenchmarkReimport measures an import of a folder already imported: every
// file is hashed, nothing is copied.
func BenchmarkReimport(b *testing.B) {
	src := b.TempDir()
	files, err := recordersim.Generate(src, recordersim.Options{Seed: 1, Count: 8, MinSize: 16 << 20, MaxSize: 16 << 20})
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, f := range files {
		total += f.Size
	}
	s := &Service{DB: sqldbtest.SQLite(b), Dir: filepath.Join(b.TempDir(), "recordings")}
	if _, err := s.ImportFolder(context.Background(), src, SourceUSB); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	for b.Loop() {
		imp, err := s.ImportFolder(context.Background(), src, SourceUSB)
		if err != nil || imp.FilesDuplicate != len(files) {
			b.Fatalf("%+v %v", imp, err)
		}
	}
}
