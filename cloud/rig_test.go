package cloud_test

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"

	"ihos/appliance"
	"ihos/cloud"
	"ihos/cloud/cloudtest"
	"ihos/internal/node"
	"ihos/internal/sqldb/sqldbtest"
)

// The rigs of these tests are views of one cloudtest.Cloud: bookRig
// (master data and bookings as the command-line tool), visitRig (visits as
// an acting party), payRig (the payment channel simulator), payBookRig (all
// three on one cloud) and patientRig (with patient and staff sessions).

const testHosp = cloudtest.Hospital

// parts names a Cloud's parts as the rigs' methods reach them (and as
// emr_test.go and prescriptions_test.go do); t follows the running subtest
// (see payBookRig.use).
type parts struct {
	*cloudtest.Cloud
	t     testing.TB
	app   *cloud.App
	url   string
	token string // the command-line token: staff-level access
	hc    *http.Client
}

func partsOf(c *cloudtest.Cloud) parts {
	return parts{Cloud: c, t: c.T, app: c.App, url: c.URL, token: c.Token, hc: c.HC}
}

// freshMySQL creates an empty database on the IHOS_MYSQL_DSN server for this
// test, dropped afterwards, and returns its "mysql://" DSN; without the
// variable it skips (fails under CI=true). emr_test.go's engine table names
// it; the other tests run cloudtest.Engines.
func freshMySQL(t *testing.T) string { return sqldbtest.MySQLDSN(t) }

// enrollAppliance enrolls a hospital appliance with code and starts it
// linked to the cloud at url: what reaches the hospital's replica can then
// be read from its database (in the returned data directory).
func enrollAppliance(t testing.TB, url string, code *cloud.Code) (*appliance.App, string) {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "appliance")
	if _, err := appliance.Enroll(ctx, dir, url, code.Code); err != nil {
		t.Fatal(err)
	}
	a, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: dir, LogLevel: "error"}, CloudLeaf: code.LeafURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, dir
}
