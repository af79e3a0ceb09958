package his_test

import (
	"context"
	stdsync "sync"
	"testing"
	"time"

	"ihos"
	"ihos/his"
)

// An order with a key is placed once: repeating the call (a lost answer
// retried), even concurrently, returns the same orders, and the HIS
// simulator receives one message.
func TestKeyedOrderPlacedOnce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.svc.RefreshCatalog(ctx); err != nil {
		t.Fatal(err)
	}
	code := r.firstCode(ihos.CatalogDrug, "")
	key := ihos.NewID()
	req := his.OrderRequest{Kind: ihos.CatalogDrug, Key: key, Patient: demoPatient(0), Items: []ihos.HISOrderLine{{Code: code, Quantity: "2"}}}
	var wg stdsync.WaitGroup
	results := make([][]his.Order, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = r.svc.PlaceOrder(ctx, req) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || len(results[i]) != 1 || results[i][0].ID != his.KeyedOrderNo(key, 0) || results[i][0].MessageID != results[0][0].MessageID {
			t.Fatalf("call %d: %+v %v", i, results[i], errs[i])
		}
	}
	if n := r.count(`SELECT COUNT(*) FROM his_orders WHERE id = ?`, his.KeyedOrderNo(key, 0)); n != 1 {
		t.Fatalf("%d order rows", n)
	}
	waitFor(t, 10*time.Second, "the order at the HIS", func() bool { return len(r.sim.Received("OMP^O09")) >= 1 })
	time.Sleep(300 * time.Millisecond)
	if got := r.sim.Received("OMP^O09"); len(got) != 1 || got[0].Placer[0] != his.KeyedOrderNo(key, 0) {
		t.Fatalf("the HIS received %+v", got)
	}
	// Without a key every call is a new order.
	req.Key = ""
	a, err1 := r.svc.PlaceOrder(ctx, req)
	b, err2 := r.svc.PlaceOrder(ctx, req)
	if err1 != nil || err2 != nil || a[0].ID == b[0].ID {
		t.Fatalf("unkeyed: %+v %+v %v %v", a, b, err1, err2)
	}
}
