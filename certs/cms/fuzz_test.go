package cms_test

import (
	"strings"
	"testing"

	"ihos/certs/cms"
	"ihos/certs/cms/cmstest"
)

// FuzzVerify feeds Verify mangled SignedData: it must return an error or a
// result, never panic (VerifyWith's last-resort recover would show as
// "内部解析异常", which fails the target too).
func FuzzVerify(f *testing.F) {
	content := emr(600)
	ts := testTSA(f, cmstest.SM2)
	for _, k := range cmstest.Kinds {
		p := testPKI(f, k)
		for _, o := range []cms.SignOptions{{}, {Detached: true}, {Profile: cms.CMS}, {NoAttributes: true}, {Detached: true, Timestamp: ts.Stamp}} {
			p7, err := cms.Sign(ctx, content, p.leaf.Cert, p.leaf.Key, o)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(p7, o.Detached)
		}
	}
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x30, 0x80, 0, 0, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, p7 []byte, detached bool) {
		var given []byte
		if detached {
			given = content
		}
		s, err := cms.Verify(p7, given)
		if err != nil {
			if strings.Contains(err.Error(), "内部解析异常") {
				t.Fatalf("recovered panic: %v", err)
			}
			return
		}
		if s.Signer == nil || len(s.Signature) == 0 {
			t.Fatalf("verified without a signer: %+v", s)
		}
	})
}
