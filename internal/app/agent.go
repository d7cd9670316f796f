package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/code"
	"scanagent/internal/config"
	"scanagent/internal/his"
	"scanagent/internal/logging"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
)

// platformClient is what the agent needs of its e-Health Card access, direct or
// through a gateway.
type platformClient interface {
	verify.Upstream
	Status() verify.Status
}

// agent is one running scanagent, built from a configuration.
type agent struct {
	cfg      config.Config
	log      zerolog.Logger
	platform platformClient // nil when platform.mode = "off"
	outbox   *queue.Queue
	api      *his.API
	// reload asks for a configuration reload (POST /v1/reload).
	reload  func() error
	pipe    *pipeline
	sup     *scanner.Supervisor
	sources []scanner.Source
	servers []server
	started time.Time
	carried *carried
}

// carried is what survives a configuration reload: the counters, the start
// time and, while the platform settings stay the same, the platform client
// with its appToken, breaker and rate-limit pauses (a reload must not cost
// a getAppToken, which would invalidate the token in use, nor lift a 10034
// pause the platform imposed).
type carried struct {
	started  time.Time
	stats    *pipelineStats
	sinks    map[string]namedSink
	platform platformClient
	settings platformSettings
}

// platformSettings are the settings the platform client is built from.
type platformSettings struct {
	platform config.Platform
	terminal string
}

// carry returns what the next agent keeps of this one.
func (a *agent) carry() *carried {
	c := &carried{started: a.started, stats: a.pipe.stats, sinks: map[string]namedSink{}, platform: a.platform,
		settings: platformSettings{a.cfg.Platform, a.cfg.Agent.TerminalID}}
	for _, s := range a.pipe.sinks {
		c.sinks[s.name] = s
	}
	return c
}

// buildAgent creates every stage from cfg; nothing is opened yet. prev,
// when not nil, is what a reload keeps of the running agent.
func buildAgent(cfg config.Config, log zerolog.Logger, prev *carried) (*agent, error) {
	if prev == nil {
		prev = &carried{started: time.Now(), stats: &pipelineStats{}, sinks: map[string]namedSink{}}
	}
	a := &agent{cfg: cfg, log: log, started: prev.started, carried: prev}
	parser, err := code.NewParser(parserOptions(cfg))
	if err != nil {
		return nil, err
	}
	httpc, err := verify.NewHTTPClient(verify.HTTPOptions{ConnectTimeout: cfg.Platform.ConnectTimeout.D(), RequestTimeout: cfg.Platform.RequestTimeout.D(), CAFile: cfg.Platform.CAFile})
	if err != nil {
		return nil, err
	}
	p := cfg.Platform
	rt := &router{}
	if settings := (platformSettings{p, cfg.Agent.TerminalID}); prev.platform != nil && reflect.DeepEqual(settings, prev.settings) {
		a.platform = prev.platform
		log.Debug().Msg("platform settings unchanged: appToken, breaker and pauses kept")
	} else {
		a.platform = newPlatformClient(cfg, httpc, log)
	}
	if a.platform != nil {
		rt.ehc = a.platform
	}
	if s := cfg.SKM; s.Enabled {
		skmHTTP, err := verify.NewHTTPClient(verify.HTTPOptions{ConnectTimeout: p.ConnectTimeout.D(), RequestTimeout: s.Timeout.D(), CAFile: p.CAFile})
		if err != nil {
			return nil, err
		}
		rt.skm = verify.NewSKM(verify.SKMOptions{BaseURL: s.BaseURL, ScanPath: s.ScanPath, IDPath: s.IDPath, AppMark: s.AppMark, AppSecret: s.AppSecret.Reveal(),
			SignOrder: s.SignOrder, TimestampUnit: s.TimestampUnit, Cipher: s.Cipher, CipherKey: s.CipherKey.Reveal(), AuthHeader: s.AuthHeader,
			Source: s.Source, Position: s.Position, VerifierDept: s.VerifierDept, VerifierName: s.VerifierName, VerifierPhone: s.VerifierPhone,
			HTTP: skmHTTP, Log: logging.Component(log, "skm")})
	}
	plog := logging.Component(log, "pipeline")
	a.pipe = &pipeline{parser: parser, debounce: code.NewDebouncer(cfg.Code.Debounce.D()), verifier: rt, offline: cfg.Agent.Offline,
		reports: map[string]reportDefaults{}, log: plog, refusedLog: plog.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Minute}),
		stats: prev.stats, carried: prev.sinks, now: time.Now}
	for _, s := range cfg.Sources {
		if s.Scene != "" && s.CardChannel != "" {
			a.pipe.reports[s.Name] = reportDefaults{scene: s.Scene, channel: s.CardChannel, department: s.Department}
		}
	}
	a.sup = scanner.NewSupervisor(logging.Component(log, "scanner"))
	for _, s := range cfg.Sources {
		src, err := buildSource(s, logging.Component(log, "scanner"))
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", s.Name, err)
		}
		a.sources = append(a.sources, src)
	}
	if api := cfg.HIS.API; api.Enabled {
		a.api = his.NewAPI(his.APIOptions{AllowedOrigins: api.AllowedOrigins, AllowedHosts: api.AllowedHosts, Token: api.Token.Reveal(),
			MaxStreamClients: api.MaxStreamClients, CheckQRCode: ehcCheck(parser), CheckIDNumber: checkIDNumber,
			DefaultDepartment: defaultReport(a.pipe.reports).department, Status: a.status, Metrics: a.metrics, Reload: func() error { return a.reload() }, Log: logging.Component(log, "his-api")})
		a.pipe.addSink("api", a.api)
		if err := a.addServer(&http.Server{Addr: api.Listen, Handler: a.api.Handler(), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}, api.TLSCert, api.TLSKey); err != nil {
			return nil, fmt.Errorf("his.api: %w", err)
		}
	}
	if p := cfg.HIS.Push; p.Enabled {
		a.pipe.addSink("push", his.NewPush(his.PushOptions{URL: p.URL, Secret: []byte(p.Secret.Reveal()), Timeout: p.Timeout.D(),
			Retries: p.Retries, Log: logging.Component(log, "his-push")}))
	}
	if h := cfg.HIS.HL7; h.Enabled {
		s, err := his.NewHL7(his.HL7Options{Addr: h.Addr, Charset: h.Charset, Template: h.Template, SendingApp: h.SendingApp,
			SendingFacility: h.SendingFacility, ReceivingApp: h.ReceivingApp, ReceivingFacility: h.ReceivingFacility,
			Timeout: h.Timeout.D(), Log: logging.Component(log, "his-hl7")})
		if err != nil {
			return nil, err
		}
		a.pipe.addSink("hl7", s)
	}
	if g := cfg.Gateway; g.Enabled {
		ehc, ok := a.platform.(*verify.EHC)
		if !ok {
			return nil, errors.New("gateway.enabled needs platform.mode = \"direct\"")
		}
		terms := map[string]string{}
		for _, t := range g.Terminals {
			terms[t.ID] = t.Token.Reveal()
		}
		gs := verify.NewGatewayServer(gatewayUpstream{EHC: ehc, router: rt}, terms, func() any { return ehc.Status() }, logging.Component(log, "gateway"))
		if err := a.addServer(&http.Server{Addr: g.Listen, Handler: gs.Handler(), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}, g.TLSCert, g.TLSKey); err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	}
	return a, nil
}

// newPlatformClient returns the e-Health Card client of the configured
// mode, or nil when platform.mode = "off".
func newPlatformClient(cfg config.Config, httpc *http.Client, log zerolog.Logger) platformClient {
	p := cfg.Platform
	switch p.Mode {
	case "direct":
		return verify.NewEHC(verify.EHCOptions{
			AppID: p.AppID, AppSecret: p.AppSecret.Reveal(), HospitalID: p.HospitalID, BaseURL: p.BaseURL, TokenURL: p.TokenURL,
			URLs: map[string]string{
				verify.APIGetHealthCardByQRCode: p.URLs.GetHealthCardByQRCode, verify.APIVerifyQRCode: p.URLs.VerifyQRCode,
				verify.APIReportHISData: p.URLs.ReportHISData, verify.APIBindCardRelation: p.URLs.BindCardRelation,
			},
			HTTP: httpc, TerminalID: cfg.Agent.TerminalID, MedicalStep: p.MedicalStep, UseCityCode: p.UseCityCode, UseCityName: p.UseCityName,
			HospitalCode: p.HospitalCode, HospitalName: p.HospitalName, ChannelCode: p.ChannelCode, ChannelName: p.ChannelName,
			ReportIDField: p.ReportIDField, Retries: p.Retries, BreakerFailures: p.BreakerFailures, BreakerCooldown: p.BreakerCooldown.D(),
			RateLimitPause: p.RateLimitPause.D(), Log: logging.Component(log, "platform"),
		})
	case "gateway":
		return verify.NewGateway(verify.GatewayOptions{URL: p.GatewayURL, Token: p.GatewayToken.Reveal(), HTTP: httpc, Retries: p.Retries,
			BreakerFailures: p.BreakerFailures, BreakerCooldown: p.BreakerCooldown.D()})
	}
	return nil
}

// server is an HTTP server of the agent, with its TLS files when HTTPS.
type server struct {
	srv *http.Server
	tls bool
}

// addServer adds an HTTP server; with a certificate it serves HTTPS. The
// pair is loaded now, so a broken file stops the start instead of leaving
// the agent running without the server.
func (a *agent) addServer(srv *http.Server, cert, key string) error {
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	}
	a.servers = append(a.servers, server{srv: srv, tls: cert != ""})
	return nil
}

// gatewayUpstream verifies through the router (EHC or SKM) and reports
// through the EHC client.
type gatewayUpstream struct {
	*verify.EHC
	router *router
}

func (g gatewayUpstream) Verify(ctx context.Context, r verify.Request) (verify.Identity, error) {
	return g.router.Verify(ctx, r)
}

func buildSource(s config.Source, log zerolog.Logger) (scanner.Source, error) {
	switch s.Type {
	case "serial":
		suffix, err := config.ParseSuffix(s.Suffix)
		if err != nil {
			return nil, err
		}
		return scanner.NewSerial(scanner.SerialOptions{Name: s.Name, Port: s.Port, VID: strings.TrimPrefix(strings.ToLower(s.VID), "0x"), PID: strings.TrimPrefix(strings.ToLower(s.PID), "0x"),
			SerialNumber: s.SerialNumber, Baud: s.Baud, DataBits: s.DataBits, Parity: s.Parity, StopBits: s.StopBits, Suffix: suffix, Gap: s.Gap.D(),
			MaxFrame: s.MaxFrame, Log: log}), nil
	case "hid":
		vid, err := config.ParseUSBID(s.VID)
		if err != nil {
			return nil, err
		}
		pid, err := config.ParseUSBID(s.PID)
		if err != nil {
			return nil, err
		}
		return scanner.NewHID(scanner.HIDOptions{Name: s.Name, VID: vid, PID: pid, SerialNumber: s.SerialNumber, Layout: s.Layout, MaxFrame: s.MaxFrame, Log: log}), nil
	case "evdev":
		return scanner.NewEvdev(scanner.EvdevOptions{Name: s.Name, Device: s.Device, MaxFrame: s.MaxFrame, Log: log}), nil
	}
	return nil, fmt.Errorf("unknown source type %q", s.Type)
}

// queueOptions maps the configuration onto the outbox's options.
func queueOptions(c config.Config, log zerolog.Logger) (queue.Options, error) {
	q := c.Queue
	o := queue.Options{Path: q.Path, MaxRecords: q.MaxRecords, MaxBytes: q.MaxBytes, FullPolicy: q.FullPolicy,
		BatchWindow: q.BatchWindow.D(), Concurrency: q.Concurrency, RetryMin: q.RetryMin.D(), RetryMax: q.RetryMax.D(), Log: log}
	if q.Encrypt {
		k, err := config.DecodeKey(q.Key.Reveal())
		if err != nil {
			return o, fmt.Errorf("queue.key: %w", err)
		}
		o.Key = k
	}
	return o, nil
}

// openOutbox opens the configured outbox (refusing a second agent on the
// same file); nil when platform.mode = "off". It outlives configuration
// reloads.
func openOutbox(c config.Config, log zerolog.Logger) (*queue.Queue, error) {
	if c.Platform.Mode == "off" {
		return nil, nil
	}
	o, err := queueOptions(c, logging.Component(log, "outbox"))
	if err != nil {
		return nil, err
	}
	ob, err := queue.Open(o)
	if err != nil {
		return nil, err
	}
	st := ob.Stats()
	log.Info().Str("path", c.Queue.Path).Int("pending", st.Depth()).Int("dead", st.Dead).Msg("outbox open")
	return ob, nil
}

// attach wires an open outbox into the agent's producers.
func (a *agent) attach(ob *queue.Queue) {
	if ob == nil || a.platform == nil {
		return
	}
	a.outbox = ob
	a.pipe.outbox = ob
	if a.api != nil {
		a.api.SetRecorder(usageRecorder{q: ob, reports: a.pipe.reports, now: time.Now})
	}
}
