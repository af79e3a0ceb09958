package e2e

import (
	"os"
	"strconv"
	"testing"
	"time"

	"ihos"
	"ihos/internal/nettest"
	"ihos/internal/sqldb/sqldbtest"
)

// partitionChanges is how many changes each side makes while cut off: 500 in
// `make test`, IHOS_PARTITION_CHANGES (10,000 in `make soak`) otherwise.
func partitionChanges() int {
	if n, err := strconv.Atoi(os.Getenv("IHOS_PARTITION_CHANGES")); err == nil && n > 0 {
		return n
	}
	return 500
}

// Both sides keep working while the link is cut, and converge when it returns:
// sync verify finds no difference. It runs with the cloud on SQLite and on
// MariaDB (IHOS_MYSQL_DSN; required in CI).
func TestPartitionBothSidesConverge(t *testing.T) {
	t.Run("cloud=sqlite", func(t *testing.T) { testPartition(t, setup{}) })
	t.Run("cloud=mysql", func(t *testing.T) { testPartition(t, setup{cloudDatabase: sqldbtest.MySQLDSN(t)}) })
}

func testPartition(t *testing.T, o setup) {
	var proxy *nettest.Proxy
	o.via = func(leaf string) string {
		proxy = nettest.NewProxy(t, leaf)
		return proxy.Addr()
	}
	s := startWith(t, o)
	ctx := adminCtx
	s.inSync(t, 15*time.Second, "demo data replicated")
	proxy.Cut()
	eventually(t, 10*time.Second, "link down", func() bool {
		st, _ := s.appliance.Link.Status(ctx)
		return st.State == "disconnected"
	})

	n := partitionChanges()
	start := time.Now()
	s.writeBothSides(t, n, "P", "分区", "136")
	t.Logf("%d changes on each side while partitioned in %v", n, time.Since(start).Round(time.Millisecond))
	if _, err := s.appliance.Link.Verify(ctx, "h1"); ihos.ErrorCode(err) != ihos.EUnavailable {
		t.Fatalf("verify while partitioned: %v", err)
	}
	// The cloud's changes wait in the hospital's down stream, which the status
	// reports as its fill level.
	eventually(t, 10*time.Second, "cloud backlog in the down stream", func() bool {
		st, _ := s.cloud.Link.Status(ctx)
		return st.Backlog == 0 && st.StreamUsagePct > 0
	})

	proxy.Restore(t)

	took := s.inSync(t, 5*time.Minute, "both sides converged")
	t.Logf("converged %v after the link returned", took.Round(time.Millisecond))
	// Applied changes leave the streams: they hold only what is not yet applied.
	eventually(t, 10*time.Second, "streams empty", func() bool {
		st, _ := s.cloud.Link.Status(ctx)
		return st.StreamUsagePct == 0 && !st.StreamAlarm
	})
	var onCloud, onAppliance int
	s.cloud.Node.DB.QueryRow(`SELECT COUNT(*) FROM departments WHERE hospital_id = 'h1' AND code LIKE 'P0%'`).Scan(&onCloud)
	s.appliance.Node.DB.QueryRow(`SELECT COUNT(*) FROM patients WHERE name LIKE '分区患者%'`).Scan(&onAppliance)
	if onCloud != n || onAppliance != n {
		t.Fatalf("after healing: %d departments on the cloud, %d patients on the appliance; want %d each", onCloud, onAppliance, n)
	}
}
