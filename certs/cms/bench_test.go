package cms_test

import (
	"testing"

	"github.com/emmansun/gmsm/smx509"

	"ihos/certs/cms"
	"ihos/certs/cms/cmstest"
	"ihos/certs/tsa"
)

func opsPerSecond(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkSignDetachedWithTimestamp: a doctor's SM2 detached PKCS#7 signature
// of a 10 KB EMR (JSON) with an in-process SM2 time-stamp of the signature.
func BenchmarkSignDetachedWithTimestamp(b *testing.B) {
	doc := emr(10 << 10)
	p := testPKI(b, cmstest.SM2)
	auth := testTSA(b, cmstest.SM2)
	o := cms.SignOptions{Detached: true, Timestamp: auth.Stamp}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := cms.Sign(ctx, doc, p.leaf.Cert, p.leaf.Key, o); err != nil {
			b.Fatal(err)
		}
	}
	opsPerSecond(b)
}

func BenchmarkSignDetached(b *testing.B) {
	doc := emr(10 << 10)
	for _, k := range cmstest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			p := testPKI(b, k)
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := cms.Sign(ctx, doc, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true}); err != nil {
					b.Fatal(err)
				}
			}
			opsPerSecond(b)
		})
	}
}

func BenchmarkVerifyDetached(b *testing.B) {
	doc := emr(10 << 10)
	for _, k := range cmstest.Kinds {
		b.Run(string(k), func(b *testing.B) {
			p := testPKI(b, k)
			p7, err := cms.Sign(ctx, doc, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cms.Verify(p7, doc); err != nil {
					b.Fatal(err)
				}
			}
			opsPerSecond(b)
		})
	}
}

// BenchmarkVerifyDetachedWithTimestamp: Verify plus tsa.Verify of the
// embedded token (signature, imprint, ESS, TSA chain).
func BenchmarkVerifyDetachedWithTimestamp(b *testing.B) {
	doc := emr(10 << 10)
	p := testPKI(b, cmstest.SM2)
	auth := testTSA(b, cmstest.SM2)
	p7, err := cms.Sign(ctx, doc, p.leaf.Cert, p.leaf.Key, cms.SignOptions{Detached: true, Timestamp: auth.Stamp})
	if err != nil {
		b.Fatal(err)
	}
	roots := []*smx509.Certificate{p.ca.Cert}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		s, err := cms.Verify(p7, doc)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tsa.Verify(s.Timestamp, s.Signature, roots); err != nil {
			b.Fatal(err)
		}
	}
	opsPerSecond(b)
}
