package pii

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpenIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "pii.key")
	p, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := p.Seal("13812345678")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "13812345678") || !strings.HasPrefix(sealed, prefix) {
		t.Fatalf("not sealed: %q", sealed)
	}
	again, _ := p.Seal("13812345678")
	if again == sealed {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	// The key survives a restart.
	p2, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := p2.Open(sealed)
	if err != nil || plain != "13812345678" {
		t.Fatalf("open = %q, %v", plain, err)
	}
	if p.Index("11010519491231002x") != p2.Index(" 11010519491231002X") {
		t.Fatal("blind index differs for equal values")
	}
	if p.Index("a") == p.Index("b") {
		t.Fatal("blind index equal for different values")
	}
	// Tampering is detected.
	bad := sealed[:len(sealed)-2] + "AA"
	if _, err := p.Open(bad); err == nil {
		t.Fatal("tampered value opened")
	}
	// Another key cannot open it.
	other, _ := LoadOrCreate(filepath.Join(t.TempDir(), "other.key"))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("opened with the wrong key")
	}
}

func TestMask(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"13812345678", "138****5678"},
		{"110105194912310021", "110105**********21"},
		{"12", "**"},
	} {
		head, tail := 3, 4
		if len(c.in) == 18 {
			head, tail = 6, 2
		}
		if got := Mask(c.in, head, tail); got != c.want {
			t.Errorf("Mask(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
