package svs

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"testing"

	"ihos/internal/sqldb/sqldbtest"
)

// TestMariaDB runs the main flows on MariaDB/MySQL when IHOS_MYSQL_DSN names a
// server: the schema and every statement of the package are written for both
// engines. Without the variable it skips (also under CI: the signing server's
// required checks run on SQLite, the appliance's only engine).
func TestMariaDB(t *testing.T) {
	if os.Getenv(sqldbtest.EnvMySQL) == "" {
		t.Skipf("%s not set: the MariaDB run of the signing server is skipped", sqldbtest.EnvMySQL)
	}
	ctx := context.Background()
	e := newEnv(t, envOptions{db: sqldbtest.MySQL(t), policy: App{Name: "MariaDB 应用", Timestamp: true}})
	data := []byte("MariaDB 上的签名")
	var sr signResponse
	if st := e.post(e.token, "/api/svs/sign", map[string]string{"data": b64s(data)}, &sr); st != http.StatusOK {
		t.Fatalf("sign: %d", st)
	}
	var v verifyOut
	if e.post(e.token, "/api/svs/verify", map[string]any{"data": b64s(data), "signature": sr.Signature, "cert": sr.Cert, "level": 2}, &v); !v.Valid {
		t.Fatalf("verify: %+v", v)
	}
	var sm signMessageResponse
	if st := e.post(e.token, "/api/svs/sign-message", map[string]any{"data": b64s(data), "detached": true}, &sm); st != 200 || !sm.Timestamp {
		t.Fatalf("sign-message: %d", st)
	}
	_, _, p := e.staff("MariaDB 医生", 0)
	if _, err := e.srv.ImportCert(ctx, []byte(p)); err != nil {
		t.Fatal(err)
	}
	if _, total, err := e.srv.SearchCerts(ctx, "MariaDB", 1, 10); err != nil || total != 1 {
		t.Fatalf("search: %d %v", total, err)
	}
	root, _ := foreignCA(t, "外部 CA")
	if _, err := e.srv.ImportTrust(ctx, "ext", []byte(certPEM(root)), ""); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.RotateToken(ctx, "MariaDB 应用"); err != nil {
		t.Fatal(err)
	}
	b, err := e.srv.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Restore(ctx, b); err != nil {
		t.Fatal(err)
	}
	if n := logCount(t, e.db, OpSign); n != 1 {
		t.Fatalf("log rows %d", n)
	}
	// A batch larger than the biggest multi-row INSERT.
	reqs := make([]*logReq, 300)
	for i := range reqs {
		reqs[i] = &logReq{e: LogEntry{ID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i), App: "批量", Op: OpVerify, DataSM3: dataDigest(nil), OK: true}}
	}
	if err := e.db.Tx(ctx, func(tx *sql.Tx) error { return insertLog(ctx, e.db, tx, reqs) }); err != nil {
		t.Fatal(err)
	}
	if n := logCount(t, e.db, OpVerify); n != 301 {
		t.Fatalf("verify rows %d", n)
	}
}
