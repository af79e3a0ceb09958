// Command ihos-printer-sim runs the ESC/POS ticket printer simulator
// (package ihos/drivers/printersim), the demo printer of `make run`: a raw
// TCP port like a network printer's 9100, optionally a pseudo-terminal like
// a serial printer, and a control page that shows every ticket as printed on
// paper and switches the printer to paper out, cover open or offline.
//
//	ihos-printer-sim -tcp 127.0.0.1:9100 -http 127.0.0.1:9101 -serial -width 80 -out ./tickets
//
// Once it listens it prints one JSON line to stdout,
// {"tcp":"host:port","control":"http://host:port","serial":"/dev/pts/N"};
// logs go to stderr as JSON. SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ihos/drivers/escpos"
	"ihos/drivers/printersim"
	"ihos/drivers/ticketimage"
	"ihos/internal/simulate"
)

func main() { simulate.Main(run) }

// paperWidths maps the -width flag (paper width in mm) to printable dots.
var paperWidths = map[int]int{58: escpos.Width58mm, 80: escpos.Width80mm, 106: escpos.Width106mm}

// run runs the simulator until ctx ends (a signal) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ihos-printer-sim", flag.ContinueOnError)
	tcpAddr := fs.String("tcp", "127.0.0.1:9100", "raw TCP (port 9100 protocol) listen address")
	serial := fs.Bool("serial", false, "also serve a pseudo-terminal as a serial printer (Linux); its path is printed")
	width := fs.Int("width", 80, "paper width in mm the tickets are drawn for: 58, 80 or 106")
	out := fs.String("out", "", "directory to write each ticket to as NNNN.png and NNNN.txt (text, QR and barcode data)")
	httpAddr := fs.String("http", "127.0.0.1:9101", "control page and API listen address")
	creds := fs.String("credentials", "", `JSON file to record the addresses in, under "printer" (make run's demo-credentials.json); other keys are kept`)
	log, code := simulate.Parse(fs, args, stderr)
	if log == nil {
		return code
	}
	dots, ok := paperWidths[*width]
	if !ok {
		fmt.Fprintln(stderr, "ihos-printer-sim: -width must be 58, 80 or 106")
		return 2
	}
	slog.SetDefault(log) // printersim logs through the default logger
	if ticketimage.FontPath() == "" {
		log.Warn("no CJK font found: Chinese is drawn as boxes in ticket images; install fonts-wqy-microhei or set IHOS_TICKET_FONT")
	}

	sim, err := printersim.Start(*tcpAddr)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	defer sim.Close()
	addrs := map[string]string{"tcp": sim.Addr()}
	if *serial {
		path, err := sim.ServeSerial()
		if err != nil {
			log.Error("serial port", "err", err)
			return 1
		}
		addrs["serial"] = path
	}
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			log.Error("output directory", "err", err)
			return 1
		}
		dir := *out
		sim.OnPrint(func(p printersim.Printed) {
			if err := writeTicket(dir, p, dots); err != nil {
				log.Error("write ticket", "seq", p.Seq, "err", err)
			}
		})
	}

	ln, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		log.Error("control listener", "err", err)
		return 1
	}
	srv := &http.Server{Handler: sim.Handler(dots), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	addrs["control"] = "http://" + ln.Addr().String()

	rec := map[string]string{"tcp": addrs["tcp"], "control": addrs["control"], "serial": addrs["serial"]}
	if err := simulate.Ready(stdout, *creds, "printer", rec, addrs); err != nil {
		log.Error("write credentials file", "err", err)
		srv.Close()
		return 1
	}
	log.Info("printer simulator ready", "tcp", addrs["tcp"], "control", addrs["control"], "serial", addrs["serial"], "width_dots", dots)

	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("control server stopped", "err", err)
		code = 1
	}
	log.Info("stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("control server shutdown", "err", err)
		code = 1
	}
	if err := sim.Close(); err != nil {
		log.Error("close failed", "err", err)
		code = 1
	}
	return code
}

// writeTicket writes ticket p as NNNN.png and NNNN.txt in dir.
func writeTicket(dir string, p printersim.Printed, dots int) error {
	base := filepath.Join(dir, fmt.Sprintf("%04d", p.Seq))
	img, err := ticketimage.PNG(p.Ticket, dots)
	if err != nil {
		return err
	}
	if err := os.WriteFile(base+".png", img, 0o644); err != nil {
		return err
	}
	return os.WriteFile(base+".txt", []byte(ticketText(p)), 0o644)
}

// ticketText is the text file of a ticket: its lines, then the QR and
// barcode payloads and any decode error.
func ticketText(p printersim.Printed) string {
	var b strings.Builder
	for _, l := range p.Ticket.Lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, q := range p.Ticket.QRCodes {
		fmt.Fprintf(&b, "[二维码] %s\n", q)
	}
	for _, c := range p.Ticket.Barcodes {
		fmt.Fprintf(&b, "[条码] %s\n", c)
	}
	if p.Err != "" {
		fmt.Fprintf(&b, "[解码错误] %s\n", p.Err)
	}
	return b.String()
}
