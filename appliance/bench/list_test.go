//go:build linux

package bench_test

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"ihos"
	"ihos/appliance"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/node"
	"ihos/internal/sqldb"
	"ihos/internal/web"
)

// staffRows is how many staff the list benchmark seeds.
const staffRows = 100_000

// extraDepartments are added to the demo hospital's 15 so the 100,000 staff
// spread over 40 departments, the size of a large tertiary hospital.
var extraDepartments = []string{"肾内科", "血液内科", "风湿免疫科", "感染科", "肿瘤科", "康复医学科", "老年医学科",
	"全科医学科", "急诊科", "重症医学科", "胸外科", "心脏大血管外科", "神经外科", "泌尿外科", "肝胆外科", "乳腺外科",
	"烧伤整形科", "眼科", "耳鼻咽喉头颈外科", "口腔科", "麻醉科", "放射科", "超声医学科", "病理科", "营养科"}

var (
	surnames   = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
	givenNames = []string{"伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀兰", "霞",
		"平", "刚", "桂英", "建华", "晓燕", "志强", "海燕", "文博", "雨桐", "子涵", "浩然", "欣怡", "宇轩", "梓萱", "俊杰", "佳怡", "思远", "嘉欣", "国庆", "红梅"}
	// kindWeights is the staff mix of a general hospital, in percent.
	kindWeights = []struct {
		kind   string
		weight int
		prefix string
	}{{ihos.StaffDoctor, 35, "D"}, {ihos.StaffNurse, 45, "N"}, {ihos.StaffPharmacist, 6, "P"}, {ihos.StaffTechnician, 8, "T"}, {ihos.StaffAdmin, 6, "A"}}
)

type dept struct {
	id     string
	total  int            // live staff
	byKind map[string]int // live staff by kind
}

type listFixture struct {
	base   string
	tokens []string // one session per client, of 200 console users
	depts  []dept
	server *latencies // handler-side latencies, to split server time from queueing
	store  *admin.Store
	db     *sqldb.DB
}

// sessions is how many console users (each with a session) the clients share.
const sessions = 200

// BenchmarkListStaff100k measures the console's staff list API over 100,000
// staff: an appliance in a temp dir, the real handler behind the real HTTP
// middleware on a loopback listener, and clients issuing filtered, paged list
// requests, each client with its own Bearer session (200 console users).
//
// Two load models:
//   - closed: each client sends its next request as soon as the previous one
//     is answered (saturation; latency = clients / throughput);
//   - think=<d>: each client waits a random think time (exponential, mean d)
//     after each answer, like a person at the console.
//
// Each runs with the list cache on (cache=on) and off (cache=off: the same
// requests, every page and total computed from the database), back to back.
// Two more closed-loop variants bound what the cache can do: mix=first-pages
// asks only for the first page of each list (a few hundred distinct requests
// besides the job-number searches), and sessions=1 also puts every client on
// one session, so that no session write empties the cache during the run.
// Each sub-benchmark reports req/s, p50_ms, p99_ms, server_p99_ms (in the
// handler), cpu_us/req, hit_% and writes/s (write generations per second).
// IHOS_BENCH_SECONDS sets the measured duration of the 200-client runs
// (default 15; the 1-client runs take a third of it).
func BenchmarkListStaff100k(b *testing.B) {
	f := newListFixture(b)
	secs := 15
	if s, err := strconv.Atoi(os.Getenv("IHOS_BENCH_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	full := time.Duration(secs) * time.Second
	cacheBytes := f.store.ListCacheBytes
	type load struct {
		name    string
		clients int
		think   time.Duration
		dur     time.Duration
	}
	type variant struct {
		load
		cache      bool
		firstPages bool // only the first page of every list (page 1-3 of a search)
		oneSession bool // every client on one session: no session writes
	}
	var cases []variant
	for _, l := range []load{{"closed/clients=200", 200, 0, full}, {"think=100ms/clients=200", 200, 100 * time.Millisecond, full},
		{"think=1s/clients=200", 200, time.Second, full}, {"closed/clients=1", 1, 0, full / 3}} {
		// On and off back to back, so both see the same competing load.
		cases = append(cases, variant{load: l, cache: true}, variant{load: l})
	}
	closed := load{"closed/clients=200", 200, 0, full}
	cases = append(cases, variant{load: closed, cache: true, firstPages: true}, variant{load: closed, firstPages: true},
		variant{load: closed, cache: true, firstPages: true, oneSession: true})
	for _, c := range cases {
		name := c.name
		if c.firstPages {
			name += "/mix=first-pages"
		}
		if c.oneSession {
			name += "/sessions=1"
		}
		if c.cache {
			name += "/cache=on"
		} else {
			name += "/cache=off"
		}
		b.Run(name, func(b *testing.B) {
			// No request is in flight between runs.
			f.store.ListCacheBytes = 0
			if c.cache {
				f.store.ListCacheBytes = cacheBytes
			}
			maxPage := 0
			if c.firstPages {
				maxPage = 1
			}
			tokens := f.tokens
			if c.oneSession {
				tokens = f.tokens[:1]
			}
			r := f.run(b, c.clients, c.think, c.dur, tokens, maxPage)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(r.rps, "req/s")
			b.ReportMetric(r.p50, "p50_ms")
			b.ReportMetric(r.p99, "p99_ms")
			b.ReportMetric(r.srvP99, "server_p99_ms")
			b.ReportMetric(r.cpuPerReq, "cpu_us/req")
			b.ReportMetric(r.hitPct, "hit_%")
			b.ReportMetric(float64(r.gens)/c.dur.Seconds(), "writes/s")
			b.Logf("%d clients, think %v, %v: %d requests, %.0f req/s; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; "+
				"in the handler p50 %.2f ms, p99 %.2f ms; CPU (server and clients) %.0f µs/request; cache hits %.1f%%; "+
				"%d write generations (%.1f/s); %d errors",
				c.clients, c.think, c.dur, r.n, r.rps, r.p50, r.p90, r.p99, r.max, r.srvP50, r.srvP99, r.cpuPerReq, r.hitPct,
				r.gens, float64(r.gens)/c.dur.Seconds(), r.errors)
			if r.errors > 0 {
				b.Errorf("%d requests failed", r.errors)
			}
		})
	}
	f.store.ListCacheBytes = cacheBytes
}

func newListFixture(b *testing.B) *listFixture {
	ctx := context.Background()
	dir := b.TempDir()
	a, err := appliance.New(ctx, appliance.Config{Config: node.Config{DataDir: dir, HTTP: "127.0.0.1:0", LogLevel: "warn"}, Demo: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	// Keep the per-request access log (its cost is part of serving a request)
	// but send it nowhere, so the benchmark output stays readable.
	slog.SetDefault(web.NewLogger(io.Discard, slog.LevelInfo))

	start := time.Now()
	depts := seedStaff(b, a)
	b.Logf("seeded %d staff over %d departments in %v", staffRows, len(depts), time.Since(start).Round(time.Millisecond))

	f := &listFixture{depts: depts, server: &latencies{}, store: a.Store, db: a.Node.DB}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: f.server.wrap(web.Middleware(a.Handler)), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	f.base = "http://" + ln.Addr().String()

	var creds map[string]appliance.Credential
	raw, err := os.ReadFile(filepath.Join(dir, "initial-credentials.json"))
	if err == nil {
		err = json.Unmarshal(raw, &creds)
	}
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"username": creds["console"].Username, "password": creds["console"].Password})
	resp, err := http.Post(f.base+"/api/admin/login", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	var sess auth.Session
	err = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || sess.Token == "" {
		b.Fatalf("login: %d %v", resp.StatusCode, err)
	}
	f.tokens = append(f.tokens, sess.Token)
	f.addSessions(b, creds["console"].Username)
	f.check(b)
	return f
}

// addSessions gives the benchmark 200 console users, each with a session, so
// that the load carries what 200 logged-in people cause besides their lists: a
// session's last use is written back once a minute, and each such write (like
// any write) invalidates the list cache. The sessions' last use is spread over
// the past minute, so those writes come at the steady rate of about 3 a second
// from the start. The users and sessions are inserted by direct SQL inside
// DB.Tx (bcrypt logins would take minutes); the sessions are as Login makes
// them, looked up by the SHA-256 of the token.
func (f *listFixture) addSessions(b *testing.B, adminUser string) {
	ctx := context.Background()
	var hash string
	if err := f.db.QueryRowContext(ctx, `SELECT password_hash FROM console_users WHERE username = ?`, adminUser).Scan(&hash); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	f.tokens = f.tokens[:0]
	err := f.db.Tx(ctx, func(tx *sql.Tx) error {
		for i := range sessions {
			id, ts := ihos.NewID(), ihos.FormatTime(now)
			if _, err := tx.ExecContext(ctx, `INSERT INTO console_users (id, username, display_name, password_hash, role, password_changed_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, fmt.Sprintf("bench%03d", i), fmt.Sprintf("压测用户%03d", i), hash, auth.RoleHospitalAdmin, ts, ts, ts); err != nil {
				return err
			}
			var raw [32]byte
			crand.Read(raw[:])
			token := hex.EncodeToString(raw[:])
			th := sha256.Sum256([]byte(token))
			seen := now.Add(-time.Duration(i) * time.Minute / sessions)
			if _, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen_at)
				VALUES (?, ?, ?, ?, ?, ?)`, hex.EncodeToString(th[:]), id, "bench", ts, ihos.FormatTime(now.Add(12*time.Hour)), ihos.FormatTime(seen)); err != nil {
				return err
			}
			f.tokens = append(f.tokens, token)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// seedStaff adds departments through the store and 100,000 staff by direct SQL
// in one transaction, with phone and ID numbers sealed and blind-indexed by the
// store's sealer exactly as the store writes them. 1% of rows are tombstones.
func seedStaff(b *testing.B, a *appliance.App) []dept {
	ctx := context.Background()
	sys := ihos.WithActor(ctx, ihos.Actor{UserID: ihos.System.UserID, Username: ihos.System.Username, Name: ihos.System.Name, Role: auth.RoleSysAdmin})
	db := a.Node.DB
	var instID string
	if err := db.QueryRowContext(ctx, `SELECT id FROM institutions WHERE parent_id IS NULL AND deleted_at IS NULL`).Scan(&instID); err != nil {
		b.Fatal(err)
	}
	deptRes, _ := a.Store.Resource("departments")
	for i, name := range extraDepartments {
		if _, err := a.Store.Create(sys, deptRes, map[string]any{"institution_id": instID, "code": fmt.Sprintf("K%02d", i+1),
			"name": name, "category": "临床", "sort_order": 200 + i*10}); err != nil {
			b.Fatal(err)
		}
	}
	rows, err := db.QueryContext(ctx, `SELECT id, institution_id FROM departments WHERE deleted_at IS NULL ORDER BY sort_order`)
	if err != nil {
		b.Fatal(err)
	}
	var depts []dept
	deptInst := map[string]string{}
	for rows.Next() {
		var id, inst string
		if err := rows.Scan(&id, &inst); err != nil {
			b.Fatal(err)
		}
		depts = append(depts, dept{id: id, byKind: map[string]int{}})
		deptInst[id] = inst
	}
	rows.Close()
	// The demo's own staff count too.
	rows, err = db.QueryContext(ctx, `SELECT department_id, kind FROM staff WHERE deleted_at IS NULL`)
	if err != nil {
		b.Fatal(err)
	}
	index := map[string]int{}
	for i, d := range depts {
		index[d.id] = i
	}
	for rows.Next() {
		var d, k string
		rows.Scan(&d, &k)
		depts[index[d]].total++
		depts[index[d]].byKind[k]++
	}
	rows.Close()

	sealer := a.Store.Sealer
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Now().Add(-3 * 365 * 24 * time.Hour)
	year := time.Now().In(ihos.Shanghai).Year()
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO staff (id, institution_id, department_id, job_no, name, gender, kind, title,
			license_no, practice_since, phone, phone_bidx, id_number, id_number_bidx, specialty, online, intro, enabled, version,
			created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := 0; i < staffRows; i++ {
			di := rng.IntN(len(depts))
			d := &depts[di]
			w := rng.IntN(100)
			k := kindWeights[0]
			for _, kw := range kindWeights {
				if w < kw.weight {
					k = kw
					break
				}
				w -= kw.weight
			}
			titles := ihos.Titles[k.kind]
			seniority := 1 + rng.IntN(35)
			phone := fmt.Sprintf("1%d%09d", []int{33, 35, 38, 39, 50, 58, 86, 89}[rng.IntN(8)], rng.IntN(1_000_000_000))
			idNo := idNumber(year-24-seniority, rng)
			sealedPhone, err := sealer.Seal(phone)
			if err != nil {
				return err
			}
			sealedID, err := sealer.Seal(idNo)
			if err != nil {
				return err
			}
			license, online, specialty := "", 0, ""
			if k.kind == ihos.StaffDoctor || k.kind == ihos.StaffNurse || k.kind == ihos.StaffPharmacist {
				license = fmt.Sprintf("11044%010d", rng.IntN(10_000_000_000))
				if seniority >= 3 && rng.IntN(3) == 0 {
					online = 1
				}
			}
			if k.kind == ihos.StaffDoctor {
				specialty = "常见病、慢性病的诊治与复诊随访"
			}
			created := ihos.FormatTime(base.Add(time.Duration(i) * 15 * time.Minute))
			var deleted any
			if rng.IntN(100) == 0 {
				deleted = created
			} else {
				d.total++
				d.byKind[k.kind]++
			}
			enabled := 1
			if rng.IntN(50) == 0 {
				enabled = 0
			}
			if _, err := stmt.ExecContext(ctx, ihos.NewID(), deptInst[d.id], d.id, fmt.Sprintf("%s%06d", k.prefix, 100000+i),
				string(surnames[rng.IntN(len(surnames))])+givenNames[rng.IntN(len(givenNames))], []string{"男", "女"}[rng.IntN(2)],
				k.kind, titles[min(len(titles)-1, max(0, len(titles)-1-seniority/7))], license, year-seniority,
				sealedPhone, sealer.Index(phone), sealedID, sealer.Index(idNo), specialty, online, nil, enabled, 1,
				created, created, deleted); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return depts
}

// idNumber makes a resident ID number with a valid check digit (synthetic).
func idNumber(birthYear int, rng *rand.Rand) string {
	base := fmt.Sprintf("4401%02d%04d%02d%02d%03d", 1+rng.IntN(18), birthYear, 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(1000))
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for k, w := range weights {
		sum += int(base[k]-'0') * w
	}
	return base + string("10X98765432"[sum%11])
}

// check verifies, before any load, that every department's list has the
// seeded total, full pages, resolved department names and masked phones.
func (f *listFixture) check(b *testing.B) {
	for _, d := range f.depts {
		var page struct {
			Items []admin.Record `json:"items"`
			Total int            `json:"total"`
		}
		last := (d.total + 19) / 20
		resp, err := f.get(http.DefaultClient, f.tokens[0], url.Values{"department_id": {d.id}, "page": {strconv.Itoa(last)}, "page_size": {"20"}})
		if err != nil {
			b.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("list: %d %v", resp.StatusCode, err)
		}
		want := d.total - (last-1)*20
		if page.Total != d.total || len(page.Items) != want {
			b.Fatalf("department %s: total %d, %d items on the last page; want %d and %d", d.id, page.Total, len(page.Items), d.total, want)
		}
		it := page.Items[0]
		if it["department_id_name"] == "" || it["institution_id_name"] == "" || !bytes.ContainsRune([]byte(it["phone"].(string)), '*') {
			b.Fatalf("unexpected item %v", it)
		}
	}
}

func (f *listFixture) get(c *http.Client, token string, q url.Values) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, f.base+"/api/admin/staff?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return c.Do(req)
}

// query returns a random list request of the mix a console sees: 60% a
// department's list at a random page, 25% a department and a staff kind at a
// random page, 10% a department searched by surname and 5% by a job number
// fragment (first three pages). maxPage, when not 0, limits the department
// and kind lists to their first maxPage pages and searches to page 1.
func (f *listFixture) query(rng *rand.Rand, maxPage int) url.Values {
	d := f.depts[rng.IntN(len(f.depts))]
	q := url.Values{"department_id": {d.id}, "page_size": {"20"}}
	pages := func(n int) string {
		n = max(1, (n+19)/20)
		if maxPage > 0 {
			n = min(n, maxPage)
		}
		return strconv.Itoa(1 + rng.IntN(n))
	}
	switch r := rng.IntN(100); {
	case r < 60:
		q.Set("page", pages(d.total))
	case r < 85:
		k := kindWeights[rng.IntN(len(kindWeights))].kind
		q.Set("kind", k)
		q.Set("page", pages(d.byKind[k]))
	case r < 95:
		q.Set("q", string(surnames[rng.IntN(20)]))
		q.Set("page", pages(60))
	default:
		q.Set("q", fmt.Sprintf("%03d", rng.IntN(1000)))
		q.Set("page", "1")
	}
	return q
}

type result struct {
	n, errors               int
	gens                    uint64 // write generations during the measured part
	hitPct                  float64
	rps, p50, p90, p99, max float64
	srvP50, srvP99          float64 // in the handler, after the server read the request
	cpuPerReq               float64 // µs of CPU (server and clients) per request
}

// run drives clients clients for a 1 s warm-up and then dur, and returns the
// figures of the measured part. With think 0 the loop is closed (each client
// sends its next request when the previous answer has been read); otherwise
// each client waits an exponentially distributed time of mean think after each
// answer, and starts at a random point of its first think time. Latency is
// measured from send to the last byte of the answer; think time is not in it.
func (f *listFixture) run(b *testing.B, clients int, think, dur time.Duration, tokens []string, maxPage int) result {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, DisableCompression: true, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	warm := time.Now().Add(time.Second)
	end := warm.Add(dur)
	lat := make([][]time.Duration, clients)
	errs := make([]int, clients)
	var wg sync.WaitGroup
	var measure sync.Once
	var cpu0 time.Duration
	var gen0, hits0, misses0 uint64
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(clients)))
			token := tokens[i%len(tokens)]
			pause := func() {
				time.Sleep(min(time.Duration(rng.ExpFloat64()*float64(think)), time.Until(end)+time.Millisecond))
			}
			if think > 0 {
				time.Sleep(time.Duration(rng.Float64() * float64(think)))
			}
			for {
				start := time.Now()
				if start.After(end) {
					return
				}
				if !start.Before(warm) {
					measure.Do(func() {
						f.server.reset()
						cpu0, gen0 = cpuTime(), f.db.Generation()
						hits0, misses0 = f.store.ListCacheStats()
					})
				}
				resp, err := f.get(c, token, f.query(rng, maxPage))
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if !start.Before(warm) {
					lat[i] = append(lat[i], time.Since(start))
					if err != nil {
						if errs[i] == 0 {
							b.Logf("client %d: %v", i, err)
						}
						errs[i]++
					}
				}
				if think > 0 {
					pause()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(warm)
	if think > 0 {
		elapsed = dur // the clients' last think times are not load
	}
	cpu := cpuTime() - cpu0
	hits, misses := f.store.ListCacheStats()
	hits, misses = hits-hits0, misses-misses0
	r0 := result{gens: f.db.Generation() - gen0}
	if hits+misses > 0 {
		r0.hitPct = 100 * float64(hits) / float64(hits+misses)
	}
	var all []time.Duration
	r := r0
	for i := range lat {
		all = append(all, lat[i]...)
		r.errors += errs[i]
	}
	slices.Sort(all)
	srv := f.server.sorted()
	r.n = len(all)
	if r.n == 0 {
		b.Fatal("no requests completed")
	}
	r.rps = float64(r.n) / elapsed.Seconds()
	r.p50, r.p90, r.p99, r.max = pct(all, 50), pct(all, 90), pct(all, 99), ms(all[len(all)-1])
	r.srvP50, r.srvP99 = pct(srv, 50), pct(srv, 99)
	r.cpuPerReq = float64(cpu.Microseconds()) / float64(r.n)
	return r
}

func pct(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return ms(sorted[max(0, min(len(sorted)-1, i-1))])
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cpuTime is the CPU (user and system) the test process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// latencies records how long the handler took for each request.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		l.mu.Lock()
		l.d = append(l.d, d)
		l.mu.Unlock()
	})
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

func (l *latencies) sorted() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s
}
