package svs

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// syslogWriter forwards log entries as RFC 5424 messages over UDP (one
// datagram each) or TCP (octet-counting framing, RFC 6587 §3.4.1). Entries are
// queued and sent by one goroutine; when the queue is full or the collector
// cannot be reached they are dropped and counted: forwarding never delays or
// fails a signature. (log/syslog is not available on Windows, hence this.)
type syslogWriter struct {
	network, addr, host string
	queue               chan LogEntry
	dropped             atomic.Int64
	quit                chan struct{}
	wg                  sync.WaitGroup
}

const (
	syslogQueue    = 8192
	syslogFacility = 16 // local0
	syslogAppName  = "ihos-svs"
	// sdID is the structured data id: a private id under IANA's enterprise
	// number for documentation (RFC 5612), which cannot clash with a real one.
	sdID = "svs@32473"
)

func newSyslogWriter(target, host string) (*syslogWriter, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "udp" && u.Scheme != "tcp") || u.Host == "" {
		return nil, fmt.Errorf("svs: syslog target %q: want udp://host:port or tcp://host:port", target)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "514")
	}
	if host == "" {
		host = "-"
	}
	w := &syslogWriter{network: u.Scheme, addr: addr, host: sdSafe(host, 255), queue: make(chan LogEntry, syslogQueue), quit: make(chan struct{})}
	w.wg.Add(1)
	go w.run()
	return w, nil
}

// send queues e; it never blocks.
func (w *syslogWriter) send(e LogEntry) {
	select {
	case w.queue <- e:
	default:
		w.dropped.Add(1)
	}
}

// Dropped returns how many entries were not forwarded.
func (w *syslogWriter) Dropped() int64 { return w.dropped.Load() }

func (w *syslogWriter) close() {
	close(w.quit)
	w.wg.Wait()
}

func (w *syslogWriter) run() {
	defer w.wg.Done()
	var conn net.Conn
	var retryAt time.Time
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	pid := os.Getpid()
	for {
		var e LogEntry
		select {
		case e = <-w.queue:
		case <-w.quit:
			return
		}
		if conn == nil {
			if time.Now().Before(retryAt) {
				w.dropped.Add(1)
				continue
			}
			c, err := net.DialTimeout(w.network, w.addr, 3*time.Second)
			if err != nil {
				retryAt = time.Now().Add(5 * time.Second)
				w.dropped.Add(1)
				slog.Warn("svs: syslog unreachable", "addr", w.addr, "err", err.Error())
				continue
			}
			conn = c
		}
		msg := formatSyslog(e, w.host, pid)
		if w.network == "tcp" {
			msg = strconv.Itoa(len(msg)) + " " + msg
		}
		conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
		if _, err := conn.Write([]byte(msg)); err != nil {
			conn.Close()
			conn = nil
			w.dropped.Add(1)
		}
	}
}

// formatSyslog renders e as an RFC 5424 message:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [svs@32473 k="v" …] BOM MSG
func formatSyslog(e LogEntry, host string, pid int) string {
	sev := 6 // informational
	result := "ok"
	if !e.OK {
		sev, result = 5, "fail" // notice
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s %d %s [%s", syslogFacility*8+sev, e.At.UTC().Format("2006-01-02T15:04:05.000000Z"),
		host, syslogAppName, pid, e.Op, sdID)
	for _, kv := range [][2]string{
		{"id", e.ID}, {"app", e.App}, {"op", e.Op}, {"key", e.KeyName}, {"sm3", e.DataSM3},
		{"len", strconv.FormatInt(e.DataLen, 10)}, {"result", result}, {"serial", e.SignerSerial}, {"remote", e.Remote},
	} {
		if kv[1] == "" {
			continue
		}
		b.WriteString(" " + kv[0] + `="` + sdEscape(kv[1]) + `"`)
	}
	b.WriteString("] \ufeff")
	b.WriteString(opText(e.Op))
	if e.OK {
		b.WriteString("成功")
	} else {
		b.WriteString("失败")
		if e.Reason != "" {
			b.WriteString("：" + strings.NewReplacer("\r", " ", "\n", " ").Replace(e.Reason))
		}
	}
	return b.String()
}

func opText(op string) string {
	switch op {
	case OpSign:
		return "数据签名"
	case OpVerify:
		return "数据验签"
	case OpSignMessage:
		return "消息签名"
	case OpVerifyMessage:
		return "消息验签"
	case OpTimestamp:
		return "时间戳"
	case OpSignXML:
		return "XML 签名"
	case OpVerifyXML:
		return "XML 验签"
	}
	return op
}

// sdEscape escapes a PARAM-VALUE: '"', '\' and ']' get a backslash.
func sdEscape(s string) string {
	if !strings.ContainsAny(s, "\"\\]") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(s)
}

// sdSafe keeps printable US-ASCII (a HOSTNAME may hold nothing else) and
// bounds the length.
func sdSafe(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r > 32 && r < 127 && utf8.ValidRune(r) {
			b.WriteRune(r)
		}
		if b.Len() >= n {
			break
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}
