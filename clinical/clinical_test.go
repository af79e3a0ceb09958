package clinical_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"testing"
	"time"

	"ihos"
	"ihos/certs"
	"ihos/clinical"
)

type signerFunc func(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error)

func (f signerFunc) Sign(ctx context.Context, staffID, pin string, doc []byte) ([]byte, error) {
	return f(ctx, staffID, pin, doc)
}

func TestSign(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)
	doc := func(at time.Time) ([]byte, error) {
		return clinical.Document(map[string]string{"type": "test", "b": "乙", "a": "甲", "written_at": ihos.FormatTime(at)})
	}
	if _, err := clinical.Sign(ctx, nil, "D1", "1", at, doc); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("no signer: %v", err)
	}
	var got []byte
	s := signerFunc(func(_ context.Context, staffID, pin string, d []byte) ([]byte, error) {
		got = d
		if staffID != "D1" || pin != "1" {
			return nil, ihos.Errorf(ihos.EForbidden, "签名密码错误")
		}
		return []byte("P7"), nil
	})
	if _, err := clinical.Sign(ctx, s, "D1", "", at, doc); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Fatalf("no pin: %v", err)
	}
	if _, err := clinical.Sign(ctx, s, "D1", "2", at, doc); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Fatalf("wrong pin: %v", err)
	}
	sg, err := clinical.Sign(ctx, s, "D1", "1", at, doc)
	if err != nil {
		t.Fatal(err)
	}
	sum := certs.SM3Sum(got)
	if sg.Doc != string(got) || sg.SM3 != hex.EncodeToString(sum[:]) || string(sg.Sig) != "P7" || !sg.At.Equal(at) {
		t.Fatalf("signature: %+v over %s", sg, got)
	}
	// The canonical form: keys sorted, whatever the map's order.
	if want := `{"a":"甲","b":"乙","type":"test","written_at":"` + ihos.FormatTime(at) + `"}`; sg.Doc != want {
		t.Fatalf("document %s, want %s", sg.Doc, want)
	}
	empty := signerFunc(func(context.Context, string, string, []byte) ([]byte, error) { return nil, nil })
	if _, err := clinical.Sign(ctx, empty, "D1", "1", at, doc); ihos.ErrorCode(err) != ihos.EInternal {
		t.Fatalf("empty signature: %v", err)
	}
}

func TestSignatureColumn(t *testing.T) {
	if clinical.SignatureColumn(nil) != nil {
		t.Fatal("unsigned is not NULL")
	}
	col := clinical.SignatureColumn([]byte{0, 1, 2}).(string)
	b, err := clinical.ScanSignature(sql.NullString{String: col, Valid: true})
	if err != nil || string(b) != "\x00\x01\x02" {
		t.Fatalf("round trip: %q %v", b, err)
	}
	if b, err := clinical.ScanSignature(sql.NullString{}); b != nil || err != nil {
		t.Fatalf("NULL: %q %v", b, err)
	}
}
