package tickets

import "testing"

// BenchmarkRenderReceipt renders the sample six-item receipt with the
// built-in template for 80 mm paper; the goal is 20,000 tickets/s on one
// core (go test -bench RenderReceipt -cpu 1 ./tickets).
func BenchmarkRenderReceipt(b *testing.B) {
	r := Sample(KindReceipt)
	f := Format{PaperMM: 80, CodePage: "GB18030"}
	if _, err := Render(r, f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(r, f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tickets/s")
}
