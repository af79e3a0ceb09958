package cloud_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"ihos"
	"ihos/cloud"
	"ihos/internal/loadtest"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/paychannel"
	"ihos/paychannel/paysim"
	"ihos/payments"
)

// benchClients are the numbers of payers creating and paying at the same
// time: a moderate load, and one that keeps the machine saturated.
var benchClients = []int{8, 32}

// BenchmarkPayThroughChannel measures self-pay orders end to end over real
// sockets: a client POSTs /api/pay/orders (the cloud records the payment and
// creates a JSAPI order at the channel simulator, signing the request and the
// pay parameters), the simulator pays at once (auto-pay) and POSTs its signed,
// encrypted notify to the cloud, and the client polls GET /api/pay/orders/{id}
// every 5 ms until the payment is paid. It reports orders/s and the p50/p99
// of one order from the create request to "paid" seen by the client.
//
// alg=rsa is the channel's default algorithm (RSA-2048 request, answer and
// notify signatures, AES-256-GCM notifies); alg=sm2 its 国密 option (SM2
// with SM3 signatures, SM4-GCM notifies; the JSAPI pay parameters are still
// RSA, as wx.requestPayment requires).
//
// Everything — clients, cloud, simulator, database — shares this machine's
// cores, so the channel's own signing (its answer and its notify) is
// counted against the cloud; see the report for the CPU split
// (-cpuprofile).
func BenchmarkPayThroughChannel(b *testing.B) {
	for _, alg := range []string{"rsa", "sm2"} {
		for _, n := range benchClients {
			b.Run(fmt.Sprintf("sqlite/alg=%s/clients=%d", alg, n), func(b *testing.B) { benchPayThroughChannel(b, "", alg, n) })
			b.Run(fmt.Sprintf("mysql/alg=%s/clients=%d", alg, n), func(b *testing.B) { benchPayThroughChannel(b, sqldbtest.MySQLDSN(b), alg, n) })
		}
	}
}

// useSM2 switches the rig's merchant to the channel's 国密 option: it
// registers an SM2 API key for the merchant at the simulator (replacing the
// RSA one) and points the cloud's configuration at it and at the channel's
// SM2 platform certificate. The RSA key stays configured for the JSAPI pay
// parameters.
func useSM2(b testing.TB) func(*cloud.PayChannelConfig) {
	return func(pc *cloud.PayChannelConfig) {
		key, err := sm2.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		keyFile := filepath.Join(b.TempDir(), "merchant_sm2_key.pem")
		if err := os.WriteFile(keyFile, paychannel.MarshalPrivateKeyPEM(key), 0o600); err != nil {
			b.Fatal(err)
		}
		const serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E2"
		body, _ := json.Marshal(map[string]string{"mchid": pc.MchID, "appid": pc.AppID, "serial_no": serial,
			"public_key": string(paychannel.MarshalPublicKeyPEM(key.Public())), "apiv3_key": pc.APIv3Key})
		resp, err := http.Post(pc.URL+"/control/merchant", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("register SM2 merchant: HTTP %d", resp.StatusCode)
		}
		pc.Algorithm, pc.MerchantSM2Key, pc.SerialNo = "SM2", keyFile, serial
		pc.PlatformCertURL = pc.URL + "/control/platform-sm2.pem"
	}
}

// TestPayThroughChannelSM2 is one self-pay order through the cloud and the
// channel simulator with the merchant on the channel's 国密 option: the
// cloud signs its request SM2, verifies the SM2 answer and the SM2-signed,
// SM4-encrypted notify, and still gives the phone RSA pay parameters.
func TestPayThroughChannelSM2(t *testing.T) {
	r := newPayRig(t, "", useSM2(t))
	r.mode(paysim.Mode{AutoPay: true})
	res := r.order(2500, "oPatientSM2")
	if res.Prepay == nil || res.Prepay.PayParams["signType"] != "RSA" || res.Prepay.PayParams["paySign"] == "" {
		t.Fatalf("prepay %+v", res.Prepay)
	}
	paid := r.waitStatus(res.Payment.ID, ihos.PaymentPaid, 10*time.Second)
	if paid.TransactionID == "" || paid.CashStatus != ihos.LegDone {
		t.Fatalf("paid: %+v", paid)
	}
	// The payment may be paid through a query before the notify's answer
	// is recorded at the simulator: wait for the acknowledged notify.
	deadline := time.Now().Add(10 * time.Second)
	for {
		acked := 0
		for _, a := range r.sim.Notifies() {
			if a.Status/100 == 2 {
				acked++
			}
		}
		if acked > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cloud acknowledged no SM2 notify")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func benchPayThroughChannel(b *testing.B, dsn, alg string, clients int) {
	var adjust func(*cloud.PayChannelConfig)
	if alg == "sm2" {
		adjust = useSM2(b)
	}
	r := newPayRig(b, dsn, adjust)
	r.mode(paysim.Mode{AutoPay: true})
	var polls atomic.Int64
	run := fmt.Sprint(time.Now().UnixNano())
	b.ResetTimer()
	cpu0 := processCPU()
	res := loadtest.Run(clients, b.N, func(i int) error {
		t0 := time.Now()
		var pr payments.PayResult
		req := cloud.OrderRequest{HospitalID: testHosp, BusinessType: ihos.PayConsultation, BusinessID: fmt.Sprintf("B%s-%d", run, i),
			PatientID: "P1", Amount: 2500, Subject: "图文问诊", OpenID: "oBench"}
		if code := r.call("POST", "/api/pay/orders", req, &pr); code != 200 || pr.Payment == nil {
			return fmt.Errorf("create: %d", code)
		}
		p := pr.Payment
		for p.Status != ihos.PaymentPaid {
			if time.Since(t0) > 30*time.Second {
				return fmt.Errorf("payment %s still %s", p.ID, p.Status)
			}
			time.Sleep(5 * time.Millisecond)
			p = r.get(p.ID)
			polls.Add(1)
		}
		return nil
	})
	cpu := processCPU() - cpu0
	b.StopTimer()
	if res.FirstErr != nil {
		b.Errorf("%d orders failed, the first: %v", res.Failed, res.FirstErr)
	}
	if len(res.Latencies) == 0 {
		return
	}
	res.Report(b, "orders")
	b.ReportMetric(float64(polls.Load())/float64(len(res.Latencies)), "polls/order")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(res.Latencies)), "cpu-ms/order")
}

// processCPU is the CPU time (user + system) this process has used: the
// clients, the cloud, the simulator and SQLite together (MariaDB's server
// is another process). Per order it is the figure that other work on the
// machine does not distort, as it does orders/s.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
