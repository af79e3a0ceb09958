package mllp

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func frame(s string) string { return "\x0b" + s + "\x1c\r" }

func TestReaderFraming(t *testing.T) {
	big := strings.Repeat("OBX|1|TX|||"+strings.Repeat("x", 1000)+"\r", 100)
	stream := "\r\n" + frame("MSH|a") + "\n\n" + frame("MSH|b") +
		"\x0bMSH|abandoned" + frame("MSH|c") + // a new start block abandons the frame
		"\x0bMSH|d\x1c" + // no CR after the end block
		frame("") + "junk" + frame(big) + "\r\n"
	want := []string{"MSH|a", "MSH|b", "MSH|c", "MSH|d", "", big}
	for name, src := range map[string]io.Reader{
		"whole":    strings.NewReader(stream),
		"one byte": iotest.OneByteReader(strings.NewReader(stream)),
		"halves":   iotest.HalfReader(strings.NewReader(stream)),
	} {
		r := NewReader(src, 0)
		for i, w := range want {
			got, err := r.ReadMessage()
			if err != nil || string(got) != w {
				t.Fatalf("%s: message %d = %.40q, %v; want %.40q", name, i, got, err, w)
			}
		}
		if got, err := r.ReadMessage(); err != io.EOF {
			t.Errorf("%s: at the end: %q, %v; want io.EOF", name, got, err)
		}
	}
}

func TestReaderEnds(t *testing.T) {
	for in, want := range map[string]error{
		"":                  io.EOF,
		"junk only\r\n":     io.EOF,
		"\x0bMSH|truncated": io.ErrUnexpectedEOF,
		"\x0b":              io.ErrUnexpectedEOF,
	} {
		_, err := NewReader(strings.NewReader(in), 0).ReadMessage()
		if err != want {
			t.Errorf("%q: %v, want %v", in, err, want)
		}
	}
	r := NewReader(iotest.ErrReader(errors.New("boom")), 0)
	if _, err := r.ReadMessage(); err == nil || err.Error() != "boom" {
		t.Errorf("stream error: %v", err)
	}
}

func TestReaderTooLarge(t *testing.T) {
	huge := strings.Repeat("y", 100<<10)
	stream := frame("MSH|ok") + frame("MSH|^~\\&|A|B|C|D|||ADT^A01|BIG1|"+huge) + frame("MSH|after") +
		frame(strings.Repeat("z", 101))
	r := NewReader(strings.NewReader(stream), 100)
	if got, err := r.ReadMessage(); err != nil || string(got) != "MSH|ok" {
		t.Fatalf("first: %q %v", got, err)
	}
	got, err := r.ReadMessage()
	if err != ErrTooLarge || len(got) != 100 || !strings.HasPrefix(string(got), "MSH|^~\\&|A|B|C|D|||ADT^A01|BIG1|") {
		t.Fatalf("oversized: %d bytes %.60q, %v", len(got), got, err)
	}
	if got, err := r.ReadMessage(); err != nil || string(got) != "MSH|after" {
		t.Fatalf("after the oversized frame: %q %v", got, err)
	}
	if _, err := r.ReadMessage(); err != ErrTooLarge {
		t.Fatalf("101 bytes with a limit of 100: %v", err)
	}
	// The prefix is at most 64 KiB even when the limit is higher.
	r = NewReader(strings.NewReader(frame(strings.Repeat("w", 200<<10))), 100<<10)
	if got, err := r.ReadMessage(); err != ErrTooLarge || len(got) != maxPrefix {
		t.Fatalf("prefix %d bytes, %v", len(got), err)
	}
	// Exactly the limit passes.
	r = NewReader(strings.NewReader(frame(strings.Repeat("v", 100))), 100)
	if got, err := r.ReadMessage(); err != nil || len(got) != 100 {
		t.Fatalf("at the limit: %d %v", len(got), err)
	}
}

type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes++
	return w.Buffer.Write(p)
}

func TestWriteMessage(t *testing.T) {
	var w countingWriter
	if err := WriteMessage(&w, []byte("MSH|x\rPID|1")); err != nil {
		t.Fatal(err)
	}
	if w.String() != "\x0bMSH|x\rPID|1\x1c\r" || w.writes != 1 {
		t.Errorf("wrote %q in %d calls", w.String(), w.writes)
	}
	for _, bad := range []string{"a\x0bb", "a\x1cb"} {
		if err := WriteMessage(&w, []byte(bad)); err != ErrFrameByte {
			t.Errorf("%q: %v", bad, err)
		}
	}
	got, err := NewReader(&w.Buffer, 0).ReadMessage()
	if err != nil || string(got) != "MSH|x\rPID|1" {
		t.Errorf("read back %q %v", got, err)
	}
}

// FuzzReader feeds arbitrary bytes to a Reader and, over net.Pipe, to a server
// connection: neither may panic or hang, and every message read is within the limit.
func FuzzReader(f *testing.F) {
	f.Add([]byte(frame("MSH|^~\\&|A|B|C|D|||ADT^A01|1|P|2.5") + "\r\n" + frame("MSH|")))
	f.Add([]byte("\x0b\x0b\x1c\x1c\r\x0bMSH|^~\\&|||||||ORU^R01|2\x1c"))
	f.Add([]byte(frame(strings.Repeat("x", 300))))
	f.Add([]byte(frame("MSH|^~\\&|A|B|C|D|||ADT^A01|1\rPID|1||\\X0B\\")))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		r := NewReader(bytes.NewReader(data), limit)
		for n := 0; ; n++ {
			msg, err := r.ReadMessage()
			if len(msg) > limit {
				t.Fatalf("message of %d bytes with a limit of %d", len(msg), limit)
			}
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && err != ErrTooLarge {
					t.Fatalf("unexpected error %v", err)
				}
				if err != ErrTooLarge {
					break
				}
			}
			if n > len(data) {
				t.Fatal("more messages than bytes")
			}
		}
		serveBytes(t, data, limit)
	})
}
