package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/agent"
	"scanagent/internal/card"
	"scanagent/internal/config"
	"scanagent/internal/loopback"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
)

const doctorUsage = `Usage: scanagent doctor -c FILE [--token-check] [--timeout D]

Checks a configuration and this machine, one line each: ✓ fine, ✗ with the
fix, – not checked. Exit 0 when no line is ✗, 1 otherwise.
  the configuration validates; file permissions (secrets not world-readable,
  the data directory writable by the service user); the outbox file (opened
  read-only) and its numbers; each scanner's port or device is present; the
  platform: DNS, TLS and, with --token-check, one signed getAppToken (direct
  mode), or the gateway's answer to this terminal's token (gateway mode); the
  Su Kang Code service's DNS and TLS; the HIS push and HL7 targets reachable
  (a HEAD / a TCP connect: nothing is pushed); the local API.

getAppToken gives out a new appToken and invalidates the one every other
process with the same platform.app_id holds (a running agent, a gateway):
they fetch a new one on their next call. It is only called with --token-check.

Flags:
`

// doctor collects the checks' lines.
type doctor struct {
	w      io.Writer
	failed int
	// Overridable for tests.
	ports   func() scanner.Inventory
	timeout time.Duration
}

func (d *doctor) pass(what, detail string) { fmt.Fprintf(d.w, "✓ %s: %s\n", what, detail) }

func (d *doctor) fail(what, detail, fix string) {
	d.failed++
	fmt.Fprintf(d.w, "✗ %s: %s\n", what, detail)
	if fix != "" {
		fmt.Fprintf(d.w, "    fix: %s\n", fix)
	}
}

func (d *doctor) skip(what, why string) { fmt.Fprintf(d.w, "– %s: %s\n", what, why) }

// doctorPorts lists the ports the OS sees; a variable for tests.
var doctorPorts = scanner.ListPorts

func cmdDoctor(ctx context.Context, args []string, sio IO) error {
	fs := newFlags("doctor", "", sio)
	path := configFlag(fs)
	tokenCheck := fs.Bool("token-check", false, "also make one signed getAppToken call (invalidates the appToken of every other process using this app_id)")
	timeout := fs.Duration("timeout", 5*time.Second, "bound of each network check")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), doctorUsage)
		fs.PrintDefaults()
	}
	if err := parseAll(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return &UsageError{Msg: "doctor: missing -c FILE: name the configuration to check, e.g. -c " + defaultConfigPath()}
	}
	d := &doctor{w: sio.Out, ports: doctorPorts, timeout: *timeout}
	d.run(ctx, *path, *tokenCheck, sio.Env)
	if d.failed > 0 {
		return &ExitError{Code: 1, Msg: fmt.Sprintf("doctor: %d check(s) failed: apply the fixes above, then run doctor again", d.failed)}
	}
	return nil
}

func (d *doctor) run(ctx context.Context, path string, tokenCheck bool, env config.Env) {
	cfg, err := config.LoadEnv(path, env)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			d.fail("config", fmt.Sprintf("%s has %d problem(s):", path, len(errs)), "")
			for _, e := range errs {
				fmt.Fprintf(d.w, "    %v\n", e)
			}
			fmt.Fprintf(d.w, "    fix: correct the lines above (scanagent config check -c %s lists them), then run doctor again\n", path)
		} else {
			d.fail("config", err.Error(), "check the path and that you may read it (run as root / Administrator)")
		}
		return
	}
	if u, ok := any(&cfg).(interface{ Unconfigured() []string }); ok && len(u.Unconfigured()) > 0 {
		d.fail("config", "not configured yet: "+strings.Join(u.Unconfigured(), ", ")+" are empty",
			"fill them in "+path+" (the platform's credentials for this hospital), then restart the service")
	} else {
		d.pass("config", path+" validates")
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(d.w, "    warning: %v\n", w)
	}
	d.permissions(cfg)
	d.outbox(cfg)
	d.scanners(cfg)
	d.platform(ctx, cfg, tokenCheck)
	d.skm(ctx, cfg)
	d.his(ctx, cfg)
}

// inlineSecrets names the secrets written in the configuration file itself
// (not in a *_file, not from the environment).
func inlineSecrets(path string) []string {
	cfg, err := config.LoadEnv(path, func(string) (string, bool) { return "", false })
	if err != nil {
		return nil
	}
	var names []string
	add := func(name string, v config.Secret, file string) {
		if v.Reveal() != "" && file == "" {
			names = append(names, name)
		}
	}
	add("platform.app_secret", cfg.Platform.AppSecret, cfg.Platform.AppSecretFile)
	add("platform.gateway_token", cfg.Platform.GatewayToken, cfg.Platform.GatewayTokenFile)
	add("skm.app_secret", cfg.SKM.AppSecret, cfg.SKM.AppSecretFile)
	add("skm.cipher_key", cfg.SKM.CipherKey, cfg.SKM.CipherKeyFile)
	add("queue.key", cfg.Queue.Key, cfg.Queue.KeyFile)
	add("his.api.token", cfg.HIS.API.Token, cfg.HIS.API.TokenFile)
	add("his.push.secret", cfg.HIS.Push.Secret, cfg.HIS.Push.SecretFile)
	for i, t := range cfg.Gateway.Terminals {
		add(fmt.Sprintf("gateway.terminal[%d].token", i), t.Token, t.TokenFile)
	}
	return names
}

// secretFiles are the *_file paths of the configuration.
func secretFiles(cfg config.Config) []string {
	var files []string
	for _, f := range []string{cfg.Platform.AppSecretFile, cfg.Platform.GatewayTokenFile, cfg.SKM.AppSecretFile, cfg.SKM.CipherKeyFile,
		cfg.Queue.KeyFile, cfg.HIS.API.TokenFile, cfg.HIS.Push.SecretFile} {
		if f != "" {
			files = append(files, f)
		}
	}
	for _, t := range cfg.Gateway.Terminals {
		if t.TokenFile != "" {
			files = append(files, t.TokenFile)
		}
	}
	return files
}

func (d *doctor) permissions(cfg config.Config) {
	if runtime.GOOS == "windows" {
		d.skip("permissions", "on Windows the service (and the MSI) restrict the data folder to SYSTEM and Administrators; the configuration inherits it when it lives there")
		d.dataDirWritable(cfg.Agent.DataDir)
		return
	}
	user := serviceUser()
	who := "the service user " + user.name
	if secrets := inlineSecrets(cfg.Path); len(secrets) > 0 {
		d.fileNotWorldReadable("config permissions", cfg.Path, "it holds "+strings.Join(secrets, ", "), user)
	} else if fi, err := os.Stat(cfg.Path); err == nil && fi.Mode().Perm()&0o002 != 0 {
		d.fail("config permissions", fmt.Sprintf("%s is writable by everyone (%v)", cfg.Path, fi.Mode().Perm()), "chmod o-w "+cfg.Path)
	} else {
		d.pass("config permissions", cfg.Path+" holds no secret itself")
	}
	for _, f := range secretFiles(cfg) {
		d.fileNotWorldReadable("secret file", f, "it holds a secret", user)
	}
	if q := cfg.Queue; q.Encrypt && q.Key.Reveal() == "" {
		if _, err := os.Stat(q.GeneratedKeyPath()); err == nil {
			d.fileNotWorldReadable("outbox key", q.GeneratedKeyPath(), "it decrypts the outbox", user)
		}
	}
	dir := cfg.Agent.DataDir
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.fail("data directory", dir+" does not exist", fmt.Sprintf("install -d -m 0750 -o %s -g %s %s", user.name, user.group, dir))
		return
	case err != nil:
		d.fail("data directory", err.Error(), "run doctor as root")
		return
	case !fi.IsDir():
		d.fail("data directory", dir+" is not a directory", "set agent.data_dir to a directory")
		return
	}
	if !user.canWrite(fi) {
		d.fail("data directory", fmt.Sprintf("%s is not writable by %s (%v, owner %s)", dir, who, fi.Mode().Perm(), owner(fi)),
			fmt.Sprintf("chown %s:%s %s && chmod 0750 %s", user.name, user.group, dir, dir))
		return
	}
	if fi.Mode().Perm()&0o007 != 0 {
		d.fail("data directory", fmt.Sprintf("%s is open to every user (%v): the outbox holds patients' data", dir, fi.Mode().Perm()), "chmod 0750 "+dir)
		return
	}
	d.pass("data directory", fmt.Sprintf("%s is writable by %s and closed to other users (%v, owner %s)", dir, who, fi.Mode().Perm(), owner(fi)))
}

func (d *doctor) fileNotWorldReadable(what, path, why string, user svcUser) {
	fi, err := os.Stat(path)
	if err != nil {
		d.fail(what, err.Error(), "check the path in the configuration")
		return
	}
	if fi.Mode().Perm()&0o006 != 0 {
		fix := fmt.Sprintf("chown root:%s %s && chmod 0640 %s", user.group, path, path)
		if user.root() {
			fix = "chmod 0600 " + path
		}
		d.fail(what, fmt.Sprintf("%s is readable by every user (%v) and %s", path, fi.Mode().Perm(), why), fix)
		return
	}
	d.pass(what, fmt.Sprintf("%s is closed to other users (%v, owner %s)", path, fi.Mode().Perm(), owner(fi)))
}

// dataDirWritable tries to write in dir (Windows: the ACL decides).
func (d *doctor) dataDirWritable(dir string) {
	f, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		d.fail("data directory", err.Error(), "create "+dir+" and let SYSTEM and Administrators write to it (the service does at its first start)")
		return
	}
	f.Close()
	os.Remove(f.Name())
	d.pass("data directory", dir+" is writable")
}

func (d *doctor) outbox(cfg config.Config) {
	const what = "outbox"
	if cfg.Platform.Mode == "off" {
		d.skip(what, "platform.mode = \"off\": no outbox")
		return
	}
	o, err := agent.QueueOptions(cfg, zerolog.Nop())
	if err != nil {
		d.fail(what, err.Error(), "check queue.key (32 bytes, hex or Base64) or the generated "+cfg.Queue.GeneratedKeyPath()+"; run doctor as root")
		return
	}
	if _, err := os.Stat(o.Path); errors.Is(err, os.ErrNotExist) {
		d.pass(what, "no file yet at "+o.Path+" (the agent creates it at its first start)")
		return
	}
	o.ReadOnly, o.OpenTimeout = true, 500*time.Millisecond
	q, err := queue.Open(o)
	var dmg *queue.DamagedError
	switch {
	case errors.Is(err, queue.ErrLocked):
		d.pass(what, o.Path+" is held by the running agent (its numbers: scanagent status)")
		return
	case errors.As(err, &dmg):
		d.fail(what, err.Error(), "start the agent: it moves the damaged file aside and salvages every readable record")
		return
	case errors.Is(err, os.ErrPermission):
		d.fail(what, err.Error(), "run doctor as root (Administrator), or as the service user")
		return
	case err != nil:
		d.fail(what, err.Error(), "keep a copy of "+o.Path+" and start the agent: it checks and repairs the file at start")
		return
	}
	st := q.Stats()
	q.Close()
	line := fmt.Sprintf("%s opens: %d pending", o.Path, st.Depth())
	if st.Depth() > 0 {
		line += fmt.Sprintf(" (oldest %s ago)", st.OldestAge.Round(time.Second))
	}
	line += fmt.Sprintf(", %d dead letters, %d delivered, %s", st.Dead, st.Delivered, size(st.FileSize))
	if st.Dead > 0 {
		d.fail(what, line, fmt.Sprintf("see why the platform refused them: scanagent queue list --dead -c %s; fix the cause, then scanagent queue retry -c %s", cfg.Path, cfg.Path))
		return
	}
	d.pass(what, line)
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(o.Path); err == nil && fi.Mode().Perm()&0o006 != 0 {
			d.fail("outbox permissions", fmt.Sprintf("%s is readable by every user (%v): it holds patients' data", o.Path, fi.Mode().Perm()), "chmod 0600 "+o.Path)
		}
	}
}

func (d *doctor) scanners(cfg config.Config) {
	if len(cfg.Sources) == 0 {
		d.skip("scanners", "no [[source]] configured")
		return
	}
	inv := d.ports()
	user := serviceUser()
	for _, s := range cfg.Sources {
		what := fmt.Sprintf("scanner %q", s.Name)
		switch {
		case s.Type == "serial" && s.Port != "":
			if p, ok := serialByName(inv, s.Port); ok {
				d.pass(what, describeSerial(p))
				d.deviceAccess(what, s.Port, user)
			} else if _, err := os.Stat(s.Port); err == nil && runtime.GOOS != "windows" {
				d.pass(what, s.Port+" is present")
				d.deviceAccess(what, s.Port, user)
			} else {
				d.fail(what, "serial port "+s.Port+" not found", "plug the scanner in, or correct source.port: scanagent ports lists the ports this PC sees"+listed(inv))
			}
		case s.Type == "serial":
			if p, ok := serialByUSB(inv, s.VID, s.PID, s.SerialNumber); ok {
				d.pass(what, describeSerial(p))
				d.deviceAccess(what, p.Name, user)
			} else {
				d.fail(what, fmt.Sprintf("no serial port with USB id %s:%s", s.VID, s.PID), "plug the scanner in and set it to virtual COM (USB CDC) mode; scanagent ports shows the ids"+listed(inv))
			}
		case s.Type == "hid":
			if !inv.HIDSupported {
				d.fail(what, "this build cannot read HID-POS scanners", "use a build with HID support (the Linux packages; scanagent_<version>_windows_amd64_hid.exe on Windows)")
				continue
			}
			if h, ok := hidByUSB(inv, s.VID, s.PID); ok {
				d.pass(what, fmt.Sprintf("HID device %s:%s present (%s)", h.VID, h.PID, strings.TrimSpace(h.Manufacturer+" "+h.Product)))
				d.deviceAccess(what, h.Path, user)
			} else {
				d.fail(what, fmt.Sprintf("no HID device %s:%s", s.VID, s.PID), "plug the scanner in and set it to HID-POS mode; scanagent ports shows the ids")
			}
		case s.Type == "evdev":
			if _, err := os.Stat(s.Device); err != nil {
				d.fail(what, "input device "+s.Device+" not found", "plug the scanner in; use a stable name under /dev/input/by-id/")
			} else {
				d.pass(what, s.Device+" is present")
				d.deviceAccess(what, s.Device, user)
			}
		default:
			d.skip(what, "type "+s.Type+" is not checked")
		}
	}
}

// listed hints at what the OS sees when a port is missing.
func listed(inv scanner.Inventory) string {
	if len(inv.Serial) == 0 {
		return " (it sees no serial port now)"
	}
	names := make([]string, 0, len(inv.Serial))
	for _, p := range inv.Serial {
		names = append(names, p.Name)
	}
	return " (it sees " + strings.Join(names, ", ") + ")"
}

func describeSerial(p scanner.SerialPort) string {
	s := "serial port " + p.Name + " present"
	if p.USB {
		s += fmt.Sprintf(" (USB %s:%s %s)", strings.ToLower(p.VID), strings.ToLower(p.PID), p.Product)
	}
	return s
}

func serialByName(inv scanner.Inventory, name string) (scanner.SerialPort, bool) {
	for _, p := range inv.Serial {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return scanner.SerialPort{}, false
}

func sameUSBID(a, b string) bool {
	x, err1 := config.ParseUSBID(a)
	y, err2 := config.ParseUSBID(b)
	return err1 == nil && err2 == nil && x == y
}

func serialByUSB(inv scanner.Inventory, vid, pid, serial string) (scanner.SerialPort, bool) {
	for _, p := range inv.Serial {
		if p.USB && sameUSBID(p.VID, vid) && sameUSBID(p.PID, pid) && (serial == "" || p.SerialNumber == serial) {
			return p, true
		}
	}
	return scanner.SerialPort{}, false
}

func hidByUSB(inv scanner.Inventory, vid, pid string) (scanner.HIDDevice, bool) {
	for _, h := range inv.HID {
		if sameUSBID(h.VID, vid) && sameUSBID(h.PID, pid) {
			return h, true
		}
	}
	return scanner.HIDDevice{}, false
}

// deviceAccess checks that the service user may open a device node (Linux:
// the packages' udev rules and groups).
func (d *doctor) deviceAccess(what, path string, user svcUser) {
	if runtime.GOOS == "windows" || user.root() {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode()&os.ModeDevice == 0 {
		return
	}
	if !user.canReadWrite(fi) {
		d.fail(what+" access", fmt.Sprintf("%s (%v, owner %s) cannot be opened by the service user %s", path, fi.Mode().Perm(), owner(fi), user.name),
			fmt.Sprintf("add %s to the device's group (usermod -aG <group> %s) or install the packages' udev rules, then replug the scanner", user.name, user.name))
	}
}

// platform checks the way to the e-Health Card platform, or the gateway.
func (d *doctor) platform(ctx context.Context, cfg config.Config, tokenCheck bool) {
	p := cfg.Platform
	switch p.Mode {
	case "off":
		d.skip("platform", "platform.mode = \"off\"")
		return
	case "gateway":
		urls := p.Gateways()
		if len(urls) == 0 {
			d.skip("gateway", "platform.gateway_urls is empty")
			return
		}
		for _, u := range urls {
			if d.reach(ctx, "gateway", u, p.CAFile) {
				d.gatewayAnswer(ctx, cfg, u)
			}
		}
		return
	}
	seen := map[string]bool{}
	reached := true
	for _, u := range []string{p.TokenURL, p.BaseURL} {
		if h := hostOf(u); !seen[h] {
			seen[h] = true
			reached = d.reach(ctx, "platform", u, p.CAFile) && reached
		}
	}
	const what = "getAppToken"
	id := "this app_id"
	if p.AppID != "" {
		id = "app_id " + p.AppID
	}
	warning := "it gives out a new appToken and invalidates the one of every other process using " + id +
		" (a running agent or gateway fetches a new one at its next call)"
	switch {
	case !tokenCheck:
		d.skip(what, "not called: "+warning+"; pass --token-check to make that one signed call")
	case p.AppID == "" || p.AppSecret.Reveal() == "":
		d.fail(what, "platform.app_id or platform.app_secret is empty", "fill them in, then run doctor --token-check again")
	case !reached:
		d.skip(what, "not called: the platform is not reachable (above)")
	default:
		fmt.Fprintf(d.w, "  note: calling getAppToken once: %s\n", warning)
		d.tokenRoundTrip(ctx, cfg)
	}
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}

// reach checks DNS and, for https, the TLS handshake towards raw's host;
// it reports whether both passed.
func (d *doctor) reach(ctx context.Context, what, raw, caFile string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		d.fail(what, fmt.Sprintf("bad URL %q", raw), "correct it in the configuration")
		return false
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if net.ParseIP(host) == nil {
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			d.fail(what+" DNS", fmt.Sprintf("%s does not resolve (%v)", host, err), "check this PC's DNS server (or the hosts file) and the spelling in the configuration")
			return false
		}
		d.pass(what+" DNS", host+" → "+strings.Join(addrs, ", "))
	}
	addr := net.JoinHostPort(host, port)
	if u.Scheme != "https" {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			d.fail(what+" connect", fmt.Sprintf("%s: %v", addr, err), "check the address, that the server runs, and the firewall between")
			return false
		}
		conn.Close()
		if loopback.Host(host) {
			d.pass(what+" connect", addr+" answers (plain HTTP on this machine)")
		} else {
			d.pass(what+" connect", addr+" answers (plain HTTP: use https beyond this machine)")
		}
		return true
	}
	pool, err := rootPool(caFile)
	if err != nil {
		d.fail(what+" TLS", "platform.ca_file: "+err.Error(), "point platform.ca_file at a PEM file, or remove it")
		return false
	}
	conn, err := (&tls.Dialer{NetDialer: &net.Dialer{}, Config: &tls.Config{ServerName: host, RootCAs: pool, MinVersion: tls.VersionTLS12}}).DialContext(ctx, "tcp", addr)
	if err != nil {
		fix := "check the firewall and proxy between this PC and " + host
		if strings.Contains(err.Error(), "certificate") {
			fix = "a proxy or firewall may intercept TLS: add its CA certificate with platform.ca_file, or check this PC's clock"
		}
		d.fail(what+" TLS", fmt.Sprintf("%s: %v", addr, err), fix)
		return false
	}
	cs := conn.(*tls.Conn).ConnectionState()
	conn.Close()
	leaf := cs.PeerCertificates[0]
	d.pass(what+" TLS", fmt.Sprintf("%s: %s, certificate for %s valid until %s", addr, tls.VersionName(cs.Version), leaf.Subject.CommonName, leaf.NotAfter.Format("2006-01-02")))
	return true
}

// tokenRoundTrip makes exactly one signed getAppToken call with the
// agent's own platform client: its transport lets that request out and
// refuses every other without sending it.
func (d *doctor) tokenRoundTrip(ctx context.Context, cfg config.Config) {
	const what = "getAppToken"
	p := cfg.Platform
	httpc, err := verify.NewHTTPClient(verify.HTTPOptions{ConnectTimeout: p.ConnectTimeout.D(), RequestTimeout: p.RequestTimeout.D(), CAFile: p.CAFile})
	if err != nil {
		d.fail(what, err.Error(), "correct platform.ca_file")
		return
	}
	guard := &onlyToken{next: httpc.Transport, tokenURL: p.TokenURL}
	httpc.Transport = guard
	ehc := verify.NewEHC(verify.EHCOptions{AppID: p.AppID, AppSecret: p.AppSecret.Reveal(), HospitalID: p.HospitalID,
		BaseURL: p.BaseURL, TokenURL: p.TokenURL, HTTP: httpc, Retries: 0, BreakerFailures: 1})
	// The token is fetched before the lookup, which the guard stops.
	_, err = ehc.Verify(ctx, card.Request{Kind: card.KindEHCStatic, Text: strings.Repeat("0", 32) + ":1"})
	switch {
	case errors.Is(err, errNotSent):
		d.pass(what, fmt.Sprintf("the platform accepted the signed request (app_id %s, hospital_id %s) and gave out an appToken", p.AppID, p.HospitalID))
	case err == nil:
		d.fail(what, "no request was made", "report this to the vendor")
	default:
		fix := "check this PC's network and proxy towards " + hostOf(p.TokenURL)
		switch card.ClassOf(err) {
		case card.Fatal, card.Rejected:
			fix = "check platform.app_id, platform.app_secret and platform.hospital_id against the platform's console (scanagent debug sign shows the signing text)"
		case card.RateLimited:
			fix = "the platform limits getAppToken for this app_id: try again later"
		}
		d.fail(what, err.Error(), fix)
	}
	if n := guard.sent; n > 1 {
		d.fail(what, fmt.Sprintf("%d requests were sent", n), "report this to the vendor")
	}
}

var errNotSent = errors.New("doctor: not sent (only getAppToken is called)")

// onlyToken lets one request to tokenURL through and refuses every other
// request without sending it.
type onlyToken struct {
	next     http.RoundTripper
	tokenURL string
	sent     int
}

func (o *onlyToken) RoundTrip(r *http.Request) (*http.Response, error) {
	if o.sent > 0 || r.URL.String() != o.tokenURL {
		return nil, errNotSent
	}
	o.sent++
	return o.next.RoundTrip(r)
}

// gatewayAnswer asks the gateway for its status with this terminal's token.
func (d *doctor) gatewayAnswer(ctx context.Context, cfg config.Config, gatewayURL string) {
	const what = "gateway"
	p := cfg.Platform
	httpc, err := verify.NewHTTPClient(verify.HTTPOptions{ConnectTimeout: p.ConnectTimeout.D(), RequestTimeout: d.timeout, CAFile: p.CAFile})
	if err != nil {
		d.fail(what, err.Error(), "correct platform.ca_file")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(gatewayURL, "/")+"/v1/status", nil)
	if err != nil {
		d.fail(what, err.Error(), "correct platform.gateway_url")
		return
	}
	req.Header.Set("Authorization", "Bearer "+p.GatewayToken.Reveal())
	resp, err := httpc.Do(req)
	if err != nil {
		d.fail(what, err.Error(), "check that the gateway agent runs and its gateway.listen is reachable from here")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		d.fail(what, "the gateway refuses this terminal's token (HTTP 401)",
			fmt.Sprintf("set platform.gateway_token to the token the gateway lists for terminal %q ([[gateway.terminal]] on the gateway)", cfg.Agent.TerminalID))
	case resp.StatusCode != http.StatusOK:
		d.fail(what, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body))), "check platform.gateway_url: it must be the gateway agent's gateway.listen address")
	case strings.Contains(string(body), `"breakerOpen":true`):
		d.fail(what, "the gateway answers, but it cannot reach the platform (its breaker is open)", "run scanagent doctor on the gateway machine")
	default:
		d.pass(what, gatewayURL+" answers and accepts this terminal's token")
	}
}

func (d *doctor) skm(ctx context.Context, cfg config.Config) {
	if !cfg.SKM.Enabled {
		return
	}
	d.reach(ctx, "Su Kang Code service", cfg.SKM.BaseURL, cfg.Platform.CAFile)
}

// his checks the HIS targets (without pushing anything) and the local API.
func (d *doctor) his(ctx context.Context, cfg config.Config) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	if p := cfg.HIS.Push; p.Enabled {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, p.URL, nil)
		if err == nil {
			var resp *http.Response
			if resp, err = (&http.Client{Timeout: d.timeout}).Do(req); err == nil {
				resp.Body.Close()
				d.pass("HIS push", fmt.Sprintf("%s answers (HEAD: HTTP %d; nothing was pushed)", p.URL, resp.StatusCode))
			}
		}
		if err != nil {
			d.fail("HIS push", err.Error(), "check that the HIS's receiving service runs and his.push.url is right")
		}
	}
	if h := cfg.HIS.HL7; h.Enabled {
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.Addr)
		if err != nil {
			d.fail("HIS HL7", err.Error(), "check that the HIS's MLLP listener runs and his.hl7.addr is right")
		} else {
			conn.Close()
			d.pass("HIS HL7", h.Addr+" accepts connections (nothing was sent)")
		}
	}
	if !cfg.HIS.API.Enabled {
		return
	}
	api := apiOf(cfg.HIS.API, d.timeout)
	if body, code, err := api.get(ctx, "/healthz"); err == nil {
		if code == http.StatusOK && strings.TrimSpace(string(body)) == "ok" {
			d.pass("local API", "the agent answers at "+api.base+"/ (its health: scanagent status)")
		} else {
			d.fail("local API", fmt.Sprintf("something else answers at %s (HTTP %d)", api.base, code), "change his.api.listen to a free port")
		}
		return
	}
	ln, err := net.Listen("tcp", cfg.HIS.API.Listen)
	if err != nil {
		d.fail("local API", fmt.Sprintf("%s: nothing answers and the address cannot be bound (%v)", cfg.HIS.API.Listen, err), "another program holds the port: change his.api.listen")
		return
	}
	ln.Close()
	d.skip("local API", cfg.HIS.API.Listen+" is free: the agent is not running; start it with "+startCommand())
}
