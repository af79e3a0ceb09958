package ca

import (
	"bytes"
	"net/http"
	"testing"
)

// BenchmarkOCSPResponse measures the responder: parse the request, look the
// serial up in SQLite, sign the response. "direct" calls it in-process,
// "http" goes through the handler over loopback HTTP, both in parallel on
// every CPU; ops/s is responses per second.
func BenchmarkOCSPResponse(b *testing.B) {
	for _, alg := range []string{KeySM2, KeyECDSA} {
		c := newTestCA(b, Options{KeyAlgorithm: alg})
		cert := c.issue(b, KindStaff, "bench", sm2Key(b).Public())
		req := ocspRequest(b, certIDHashAlgs[0], cert, c.Certificate(), []byte("0123456789abcdef"))
		b.Run(alg+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if resp := c.respondOCSP(testCtx, req); len(resp) < 100 {
						b.Fatal("short response")
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
		b.Run(alg+"/http", func(b *testing.B) {
			url := c.srv.URL + "/ca/ocsp"
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.RunParallel(func(pb *testing.PB) {
				var buf bytes.Buffer
				for pb.Next() {
					resp, err := client.Post(url, "application/ocsp-request", bytes.NewReader(req))
					if err != nil {
						b.Fatal(err)
					}
					buf.Reset()
					buf.ReadFrom(resp.Body)
					resp.Body.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
