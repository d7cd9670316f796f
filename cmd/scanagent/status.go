package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kardianos/service"

	"scanagent/internal/agent"
	"scanagent/internal/config"
	"scanagent/internal/loopback"
)

// Exit codes of `scanagent status`, as monitoring plugins (Nagios, Zabbix,
// Icinga) read them.
const (
	statusOK       = 0 // healthy: scanning and reporting
	statusDegraded = 1 // degraded, or not configured yet
	statusCritical = 2 // critical, or the agent is down or its status unreadable
)

// levelDown is the level `status` gives an agent that does not answer.
const levelDown = "down"

const statusUsage = `Usage: scanagent status [-c FILE] [--json] [--api URL] [--timeout D]

Asks the running agent (its local API, found from the configuration) how it
is, prints a summary and exits:
  0  ok: scanning and reporting
  1  degraded (e.g. platform unreachable, reports piling up, dead letters,
     Su Kang Code or HIS push failing), or not configured yet
  2  critical (a scanner unplugged, the outbox damaged, the disk full), or
     the agent is down, unreachable or its status unreadable
Without -c it reads the installed configuration (%s) when present.
With --json it prints the agent's /v1/status as is (for a down agent:
{"health":{"level":"down",...}}), with the same exit code.

Flags:
`

// serviceState is the service manager's view of the installed service,
// one line (IO.Service in tests).
func serviceState(cfgPath string) string {
	s, err := service.New(&program{}, serviceConfig(cfgPath))
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	st, err := s.Status()
	state := map[service.Status]string{service.StatusRunning: "running", service.StatusStopped: "stopped"}[st]
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		state = "not installed"
	case errors.As(err, new(*exec.ExitError)):
		state = "stopped" // SysV status scripts exit non-zero when not running
	case err != nil:
		state = "unknown (" + err.Error() + ")"
	case state == "":
		state = "unknown"
	}
	return state + " (" + service.ChosenSystem().String() + ")"
}

// defaultConfigPath is where the packages install the configuration.
func defaultConfigPath() string {
	if runtime.GOOS == "windows" {
		pd := os.Getenv("ProgramData")
		if pd == "" {
			pd = `C:\ProgramData`
		}
		return filepath.Join(pd, "scanagent", "scanagent.toml")
	}
	return "/etc/scanagent/scanagent.toml"
}

// localAPI is how the command line reaches the running agent's local API.
type localAPI struct {
	base   string // scheme://host:port, no trailing slash
	token  string
	client *http.Client
}

// apiOf returns the local API of the configuration: HTTPS when it has a
// certificate, this machine's address when it listens on every address.
// The agent's certificate is pinned when its file is readable (no
// hostname check: the agent is asked by the address it listens on).
func apiOf(api config.APIConf, timeout time.Duration) localAPI {
	host, port, err := net.SplitHostPort(api.Listen)
	if err != nil {
		host, port = "127.0.0.1", "8470"
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "127.0.0.1"
		if ip.To4() == nil {
			host = "::1"
		}
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // this machine: never through a proxy
	if api.TLSCert != "" {
		scheme = "https"
		tr.TLSClientConfig = pinnedTLS(api.TLSCert)
	}
	return localAPI{base: scheme + "://" + net.JoinHostPort(host, port), token: api.Token.Reveal(),
		client: &http.Client{Timeout: timeout, Transport: tr}}
}

// pinnedTLS trusts exactly the certificate in certFile; unreadable, the
// system's roots.
func pinnedTLS(certFile string) *tls.Config {
	data, err := os.ReadFile(certFile)
	if err != nil {
		return &tls.Config{}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return &tls.Config{}
	}
	want := block.Bytes
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return fmt.Errorf("the agent's certificate is not the one in %s", certFile)
			}
			return nil
		},
	}
}

// apiAt is the local API at an explicit URL (--api); the token comes
// from SCANAGENT_HIS_TOKEN.
func apiAt(raw string, sio IO, timeout time.Duration) (localAPI, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return localAPI{}, &UsageError{Msg: fmt.Sprintf("status: --api %q: give the agent's address, e.g. http://127.0.0.1:8470", raw)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if loopback.Host(u.Hostname()) {
		tr.Proxy = nil
	}
	tok, _ := sio.Env("SCANAGENT_HIS_TOKEN")
	return localAPI{base: strings.TrimRight(u.Scheme+"://"+u.Host+u.Path, "/"), token: tok, client: &http.Client{Timeout: timeout, Transport: tr}}, nil
}

// get GETs path from the agent.
func (l localAPI) get(ctx context.Context, path string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.base+path, nil)
	if err != nil {
		return nil, 0, err
	}
	if l.token != "" {
		req.Header.Set("Authorization", "Bearer "+l.token)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return body, resp.StatusCode, err
}

// agentStatus is what `status` reads of /v1/status.
type agentStatus struct {
	Version  string        `json:"version"`
	Terminal string        `json:"terminal"`
	Uptime   string        `json:"uptime"`
	Health   *agent.Health `json:"health"`
	Setup    *struct {
		Configured *bool    `json:"configured"`
		Missing    []string `json:"missing"`
		Hint       string   `json:"hint"`
	} `json:"setup"`
	Sources []struct {
		Name       string    `json:"name"`
		Connected  bool      `json:"connected"`
		Since      time.Time `json:"since"`
		LastError  string    `json:"lastError"`
		Scans      int64     `json:"scans"`
		Reconnects int64     `json:"reconnects"`
	} `json:"sources"`
	Platform struct {
		Mode        string               `json:"mode"`
		TokenAge    string               `json:"tokenAge"`
		HasToken    bool                 `json:"hasToken"`
		BreakerOpen bool                 `json:"breakerOpen"`
		OpenUntil   time.Time            `json:"openUntil"`
		Failures    int                  `json:"consecutiveFailures"`
		PausedUntil map[string]time.Time `json:"pausedUntil"`
		LastError   map[string]string    `json:"lastError"`
	} `json:"platform"`
	Queue *struct {
		Depth     int    `json:"depth"`
		OldestAge string `json:"oldestAge"`
		Dead      int    `json:"dead"`
		Delivered int64  `json:"delivered"`
		FileSize  int64  `json:"fileSize"`
		Space     struct {
			Full bool `json:"full"`
		} `json:"space"`
	} `json:"queue"`
	HIS        map[string]struct{ Delivered, Failed int64 } `json:"his"`
	HISClients int                                          `json:"hisClients"`
	SKM        *struct {
		LastError string `json:"lastError"`
	} `json:"skm"`
	RecentScans []struct {
		Time   time.Time `json:"time"`
		Source string    `json:"source"`
	} `json:"recentScans"`
}

// health is the agent's verdict; a setup saying "not configured" wins.
func (s *agentStatus) health() agent.Health {
	h := agent.Health{Level: agent.HealthOK}
	if s.Health != nil {
		h = *s.Health
	}
	if s.Setup != nil && s.Setup.Configured != nil && !*s.Setup.Configured && h.Level != agent.HealthUnconfigured {
		msg := "not configured yet: fill in " + strings.Join(s.Setup.Missing, ", ")
		if s.Setup.Hint != "" {
			msg += "; " + s.Setup.Hint
		}
		h = agent.Health{Level: agent.HealthUnconfigured, Reasons: []agent.HealthReason{{Code: agent.ReasonNotConfigured, Severity: agent.SeverityRed, Message: msg}}}
	}
	return h
}

func exitFor(level string) int {
	switch level {
	case agent.HealthOK:
		return statusOK
	case agent.HealthDegraded, agent.HealthUnconfigured:
		return statusDegraded
	}
	return statusCritical
}

func cmdStatus(ctx context.Context, args []string, sio IO) error {
	fs := newFlags("status", "", sio)
	path := configFlag(fs)
	asJSON := fs.Bool("json", false, "print the agent's /v1/status JSON instead of the summary")
	apiURL := fs.String("api", "", "the agent's local API, e.g. https://kiosk-12:8470 (default: from the configuration; token from SCANAGENT_HIS_TOKEN)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait for the agent")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), statusUsage, defaultConfigPath())
		fs.PrintDefaults()
	}
	if err := parseAll(fs, args); err != nil {
		return err
	}
	cfgPath := *path
	var notes []string
	var api localAPI
	switch {
	case *apiURL != "":
		var err error
		if api, err = apiAt(*apiURL, sio, *timeout); err != nil {
			return err
		}
	default:
		if cfgPath == "" {
			if _, err := os.Stat(defaultConfigPath()); err == nil {
				cfgPath = defaultConfigPath()
			}
		}
		apiConf := config.Default().HIS.API
		if cfgPath != "" {
			cfg, err := config.LoadEnv(cfgPath, sio.Env)
			switch {
			case err == nil:
				apiConf = cfg.HIS.API
				if !apiConf.Enabled {
					return &ExitError{Code: statusCritical, Msg: fmt.Sprintf("status: %s has [his.api] enabled = false: the agent has no local API to ask; enable it, or watch its log and metrics instead", cfgPath)}
				}
			case errors.Is(err, os.ErrPermission):
				notes = append(notes, fmt.Sprintf("cannot read %s (%v): trying the default address; run as root (Administrator) or pass -c", cfgPath, errors.Unwrap(err)))
			default:
				return &ExitError{Code: statusCritical, Msg: fmt.Sprintf("status: %v\nfix the configuration (scanagent config check -c %s), or point at the agent with --api URL", err, cfgPath)}
			}
		}
		api = apiOf(apiConf, *timeout)
	}
	svc := sio.Service(cfgPath)

	body, code, err := api.get(ctx, "/v1/status")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", code, strings.TrimSpace(string(body)))
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			err = fmt.Errorf("%w (set his.api.token in the configuration, or SCANAGENT_HIS_TOKEN with --api)", err)
		}
	}
	var st agentStatus
	if err == nil {
		if jerr := json.Unmarshal(body, &st); jerr != nil {
			err = fmt.Errorf("the answer is not the agent's status: %v", jerr)
		}
	}
	if err != nil {
		return statusDown(sio, *asJSON, api, svc, err, notes)
	}
	h := st.health()
	if *asJSON {
		sio.Out.Write(bytes.TrimRight(body, "\n"))
		fmt.Fprintln(sio.Out)
	} else {
		printSummary(sio.Out, &st, h, api, svc, notes)
	}
	if c := exitFor(h.Level); c != statusOK {
		return &ExitError{Code: c}
	}
	return nil
}

// statusDown reports an agent that does not answer (or not as one): exit 2.
func statusDown(sio IO, asJSON bool, api localAPI, svc string, err error, notes []string) error {
	fix := "start it: " + startCommand() + "; then look at its log (" + logHint() + ")"
	if strings.HasPrefix(svc, "not installed") {
		fix = "install it: scanagent install -c FILE, then scanagent start (or run it in the foreground: scanagent run -c FILE)"
	}
	if strings.HasPrefix(svc, "running") {
		fix = "the service runs but its local API does not answer: check his.api.listen, and the log (" + logHint() + ")"
	}
	msg := fmt.Sprintf("the agent does not answer at %s (%v)", api.base, err)
	if asJSON {
		b, _ := json.Marshal(map[string]any{"health": agent.Health{Level: levelDown, Reasons: []agent.HealthReason{{Code: "agent_down", Severity: agent.SeverityRed,
			Message: msg + ": " + fix}}}, "service": svc})
		fmt.Fprintln(sio.Out, string(b))
		return &ExitError{Code: statusCritical}
	}
	fmt.Fprintf(sio.Out, "scanagent DOWN: %s\n  ✗ %s\n", msg, fix)
	tw := tabwriter.NewWriter(sio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "service\t%s\n", svc)
	for _, n := range notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	tw.Flush()
	return &ExitError{Code: statusCritical}
}

func startCommand() string {
	if runtime.GOOS == "windows" {
		return "scanagent start (from an Administrator prompt) or services.msc"
	}
	return "sudo systemctl start scanagent (or sudo scanagent start)"
}

func logHint() string {
	if runtime.GOOS == "windows" {
		return "the Windows event log, Application, source scanagent, or [log] file"
	}
	return "journalctl -u scanagent"
}

var levelTitles = map[string]string{
	agent.HealthOK:           "OK: scanning and reporting",
	agent.HealthDegraded:     "DEGRADED",
	agent.HealthCritical:     "CRITICAL",
	agent.HealthUnconfigured: "NOT CONFIGURED",
}

// printSummary writes the readable status: the verdict and its reasons,
// then one line per part.
func printSummary(w io.Writer, st *agentStatus, h agent.Health, api localAPI, svc string, notes []string) {
	title := levelTitles[h.Level]
	if title == "" {
		title = strings.ToUpper(h.Level)
	}
	if n := len(h.Reasons); n > 0 && h.Level != agent.HealthUnconfigured {
		title += fmt.Sprintf(": %d problem%s", n, map[bool]string{true: "s"}[n > 1])
	}
	fmt.Fprintf(w, "scanagent %s\n", title)
	for _, r := range h.Reasons {
		mark := "!"
		if r.Severity == agent.SeverityRed {
			mark = "✗"
		}
		fmt.Fprintf(w, "  %s %s\n", mark, r.Message)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "service\t%s\n", svc)
	fmt.Fprintf(tw, "agent\t%s, terminal %s, up %s\n", st.Version, st.Terminal, st.Uptime)
	fmt.Fprintf(tw, "page\t%s/\n", api.base)
	lastScan := map[string]time.Time{}
	for _, s := range st.RecentScans {
		if s.Time.After(lastScan[s.Source]) {
			lastScan[s.Source] = s.Time
		}
	}
	sort.Slice(st.Sources, func(i, j int) bool { return st.Sources[i].Name < st.Sources[j].Name })
	label := "scanners"
	if len(st.Sources) == 0 {
		fmt.Fprintf(tw, "%s\tnone configured\n", label)
	}
	for _, s := range st.Sources {
		line := fmt.Sprintf("%s: connected since %s, %d scans", s.Name, clock(s.Since), s.Scans)
		if !s.Connected {
			line = fmt.Sprintf("%s: NOT CONNECTED since %s", s.Name, clock(s.Since))
			if s.LastError != "" {
				line += " (" + s.LastError + ")"
			}
		}
		if t, ok := lastScan[s.Name]; ok {
			line += ", last scan " + clock(t)
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, line)
		label = ""
	}
	fmt.Fprintf(tw, "platform\t%s\n", platformLine(st))
	apis := make([]string, 0, len(st.Platform.LastError))
	for api := range st.Platform.LastError {
		apis = append(apis, api)
	}
	sort.Strings(apis)
	for _, api := range apis {
		fmt.Fprintf(tw, "\tlast error: %s\n", st.Platform.LastError[api])
	}
	if q := st.Queue; q != nil {
		line := fmt.Sprintf("%d queued", q.Depth)
		if q.Depth > 0 {
			line += ", oldest " + q.OldestAge
		}
		line += fmt.Sprintf("; %d dead letters; %d delivered; file %s", q.Dead, q.Delivered, size(q.FileSize))
		if q.Space.Full {
			line += "; DISK FULL"
		}
		fmt.Fprintf(tw, "outbox\t%s\n", line)
	} else {
		fmt.Fprintf(tw, "outbox\tnone (no platform)\n")
	}
	his := []string{fmt.Sprintf("%d clients connected", st.HISClients)}
	for _, name := range []string{"push", "hl7"} {
		if s, ok := st.HIS[name]; ok {
			his = append(his, fmt.Sprintf("%s %d delivered, %d failed", name, s.Delivered, s.Failed))
		}
	}
	fmt.Fprintf(tw, "HIS\t%s\n", strings.Join(his, "; "))
	if st.SKM != nil {
		skm := "ok"
		if st.SKM.LastError != "" {
			skm = "failing: " + st.SKM.LastError
		}
		fmt.Fprintf(tw, "Su Kang Code\t%s\n", skm)
	}
	for _, n := range notes {
		fmt.Fprintf(tw, "note\t%s\n", n)
	}
	tw.Flush()
}

func platformLine(st *agentStatus) string {
	p := st.Platform
	switch p.Mode {
	case "", "off":
		return "off"
	}
	state := "reachable"
	switch {
	case p.BreakerOpen:
		state = fmt.Sprintf("UNREACHABLE (%d calls failed in a row, next try %s)", p.Failures, clock(p.OpenUntil))
	case p.Failures > 0:
		state = fmt.Sprintf("UNREACHABLE (%d calls failed in a row)", p.Failures)
	}
	for api, until := range p.PausedUntil {
		if until.After(time.Now()) {
			state += fmt.Sprintf("; %s paused until %s", api, clock(until))
		}
	}
	line := p.Mode + ": " + state
	if p.Mode == "direct" {
		if !p.HasToken {
			line += ", no appToken yet"
		} else {
			line += ", appToken " + p.TokenAge + " old"
		}
	}
	return line
}

// clock writes t in local time: the time of day for today, else the date too.
func clock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.Local()
	if y, m, d := t.Date(); time.Now().Format("2006-01-02") == fmt.Sprintf("%04d-%02d-%02d", y, m, d) {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// rootPool is the system's roots plus the PEM certificates of caFile, as
// the agent's platform client trusts them.
func rootPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	return pool, nil
}
