package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/web"
)

// The service binaries double as their own command-line tools
// (`ihos-appliance sync verify`, `ihos-cloud hospital add`). A tool does not
// open the database itself: it asks the running service over HTTP, with a token
// the service writes into its data dir at start, so only who can read the data
// dir (root, the service user) can use it, and every write still goes through
// the service.

// CLITokenFile is the token's file in the data dir.
const CLITokenFile = "cli.token"

// CLITokenHeader carries the token.
const CLITokenHeader = "X-IHOS-CLI-Token"

func (n *Node) writeCLIToken() error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	n.cliToken = hex.EncodeToString(b)
	return os.WriteFile(filepath.Join(n.Config.DataDir, CLITokenFile), []byte(n.cliToken+"\n"), 0o600)
}

// CLIActor admits a request from the command-line tool as the system
// administrator "cli"; ok is false when the request carries no token, and err
// is set when it carries a wrong one.
func (n *Node) CLIActor(r *http.Request) (ctx context.Context, ok bool, err error) {
	t := r.Header.Get(CLITokenHeader)
	if t == "" {
		return r.Context(), false, nil
	}
	if n.cliToken == "" || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(n.cliToken)) != 1 {
		return nil, false, ihos.Errorf(ihos.EUnauthorized, "命令行凭据无效：请在运行中的服务所在机器上、以服务的数据目录执行")
	}
	act := ihos.Actor{UserID: "cli", Username: "cli", Name: "命令行", Role: auth.RoleSysAdmin, IP: web.ClientIP(r), RequestID: web.RequestID(r.Context())}
	return ihos.WithActor(r.Context(), act), true, nil
}

// AuthorizeCLIOr admits the command-line tool, or a session holding perm.
func (n *Node) AuthorizeCLIOr(r *http.Request, perm string) (context.Context, error) {
	ctx, ok, err := n.CLIActor(r)
	if err != nil || ok {
		return ctx, err
	}
	return r.Context(), n.Auth.Authorize(r.Context(), perm, "")
}

// CLI is a command-line tool's connection to its running service.
type CLI struct {
	base  string
	token string
	JSON  bool // print raw JSON instead of text
	Out   io.Writer
}

// NewCLI parses the tool's flags (the service's own: --config, --data-dir,
// --http, plus --json and any fs already has), wherever they stand among the
// words, and returns the client and the words.
func NewCLI(kind string, fs *flag.FlagSet, cfg *Config, full any, args []string, out io.Writer) (*CLI, []string, error) {
	path := cfg.Flags(fs)
	asJSON := fs.Bool("json", false, "输出 JSON")
	flags, words := splitArgs(fs, args)
	if err := Load(fs, flags, full, path); err != nil {
		return nil, nil, err
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir(kind)
	}
	file := filepath.Join(cfg.DataDir, CLITokenFile)
	token, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, ihos.Errorf(ihos.EUnavailable, "读取 %s 失败：服务是否在运行、数据目录是否正确（--data-dir）？", file)
	}
	host := cfg.HTTP
	if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") || strings.HasPrefix(host, "[::]:") {
		host = "127.0.0.1:" + host[strings.LastIndexByte(host, ':')+1:]
	}
	return &CLI{base: "http://" + host, token: strings.TrimSpace(string(token)), JSON: *asJSON, Out: out}, words, nil
}

// Call sends a request to the service and decodes the answer into v (or, in
// JSON mode, prints it). Error answers come back as *ihos.Error.
func (c *CLI) Call(ctx context.Context, method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set(CLITokenHeader, c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ihos.Errorf(ihos.EUnavailable, "无法连接服务 %s：%v", c.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e web.ErrorBody
		json.Unmarshal(b, &e)
		return &ihos.Error{Code: e.Code, Message: e.Message, Fields: e.Fields}
	}
	if c.JSON {
		c.Out.Write(b)
		return nil
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(b, v)
}

// splitArgs separates the words from the flags, wherever the flags stand
// (`sync verify --data-dir X` and `sync --data-dir X verify` both work).
func splitArgs(fs *flag.FlagSet, args []string) (flags, words []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			words = append(words, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && i+1 < len(args) {
			if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
				continue
			}
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, words
}
