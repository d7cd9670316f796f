// Package agent is the only package that knows every stage of scanagent:
// it builds the scanners, parser, visit policy, platform clients, gateway
// server, outbox and HIS sinks from a configuration, starts them in order,
// reloads them and stops them. It holds no policy of its own (that is
// internal/visit) and no command line (that is cmd/scanagent).
package agent

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/config"
	"scanagent/internal/fleet"
	"scanagent/internal/gateway"
	"scanagent/internal/ha"
	"scanagent/internal/his"
	"scanagent/internal/logging"
	"scanagent/internal/queue"
	"scanagent/internal/scanner"
	"scanagent/internal/sdnotify"
	"scanagent/internal/serve"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
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
	skm      visit.Verifier // nil when [skm] is off
	outbox   *queue.Queue
	api      *his.API
	// reload asks for a configuration reload (POST /v1/reload).
	reload  func() error
	pipe    *visit.Pipeline
	reports map[string]card.ReportDefaults
	sup     *scanner.Supervisor
	sources []scanner.Source
	servers serve.Group
	started time.Time
	carried *carried
	obs     *observer
	// unconfigured lists what the configuration still lacks (nil: it is
	// configured); the agent then runs idle (setup.go).
	unconfigured []string
	// notify tells systemd the agent's state (sdnotify).
	notify sdnotify.Notifier
	// lastScan is when a scanner last read a code.
	lastScan *scanClock
	// fleet is a gateway's fleet registry (nil on a terminal); memFleet
	// the in-memory one, which a reload keeps.
	fleet    gateway.Fleet
	memFleet *fleet.Memory
}

// carried is what survives a configuration reload: the counters, the
// metrics registry, the start time and, while the platform settings stay
// the same, the platform client with its appToken, breaker and rate-limit
// pauses (a reload must not cost a getAppToken, which would invalidate the
// token in use, nor lift a 10034 pause the platform imposed).
type carried struct {
	started  time.Time
	stats    *visit.Stats
	sinks    map[string]*visit.SinkStats
	platform platformClient
	settings platformSettings
	obs      *observer
	lastScan *scanClock
	fleet    *fleet.Memory
}

// platformSettings are the settings the platform client is built from.
type platformSettings struct {
	platform config.Platform
	terminal string
	ha       config.HA // of a gateway in [gateway.ha]; zero otherwise
}

// settingsOf returns cfg's platform settings.
func settingsOf(cfg config.Config) platformSettings {
	s := platformSettings{platform: cfg.Platform, terminal: cfg.Agent.TerminalID}
	if haEnabled(cfg) {
		s.ha = cfg.Gateway.HA
	}
	return s
}

// carry returns what the next agent keeps of this one.
func (a *agent) carry() *carried {
	return &carried{started: a.started, stats: a.pipe.Stats(), sinks: a.pipe.SinkStats(), platform: a.platform,
		settings: settingsOf(a.cfg), obs: a.obs, lastScan: a.lastScan, fleet: a.memFleet}
}

// build creates every stage from cfg; nothing is opened yet. prev, when
// not nil, is what a reload keeps of the running agent.
func build(cfg config.Config, log zerolog.Logger, prev *carried) (*agent, error) {
	if prev == nil {
		prev = &carried{started: time.Now()}
	}
	if prev.obs == nil {
		prev.obs = newObserver()
	}
	if prev.lastScan == nil {
		prev.lastScan = &scanClock{}
	}
	a := &agent{cfg: cfg, log: log, started: prev.started, carried: prev, reports: reportDefaults(cfg), obs: prev.obs, lastScan: prev.lastScan}
	parser, err := code.NewParser(ParserOptions(cfg))
	if err != nil {
		return nil, err
	}
	if err := a.buildVerifiers(prev); err != nil {
		return nil, err
	}
	a.pipe = visit.New(visit.Options{Parser: parser, Debounce: code.NewDebouncer(cfg.Code.Debounce.D()), EHC: a.ehc(), SKM: a.skm,
		Offline: cfg.Agent.Offline, Budget: cfg.Agent.PlatformBudget.D(), Reports: a.reports, Stats: prev.stats, Sinks: prev.sinks, ObserveHandoff: a.obs.observeHandoff, AfterHandoff: afterHandoffFault(),
		Log: logging.Component(log, "pipeline")})
	a.sup = scanner.NewSupervisor(logging.Component(log, "scanner"))
	for _, s := range cfg.Sources {
		src, err := buildSource(s, logging.Component(log, "scanner"))
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", s.Name, err)
		}
		a.sources = append(a.sources, src)
	}
	if err := a.buildSinks(parser); err != nil {
		return nil, err
	}
	if err := a.buildGateway(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return a, nil
}

// ehc is the e-Health Card verifier, nil when platform.mode = "off".
func (a *agent) ehc() visit.Verifier {
	if a.platform == nil {
		return nil
	}
	return a.platform
}

// reportDefaults are the report settings of the sources that report.
func reportDefaults(cfg config.Config) map[string]card.ReportDefaults {
	m := map[string]card.ReportDefaults{}
	for _, s := range cfg.Sources {
		if s.Scene != "" && s.CardChannel != "" {
			// card_channel may name the channel; reports carry its code.
			m[s.Name] = card.ReportDefaults{Scene: s.Scene, Channel: card.NormalizeChannel(s.CardChannel), Department: s.Department}
		}
	}
	return m
}

// buildVerifiers builds (or keeps, across a reload with the same settings)
// the platform client, and the Su Kang Code client. A terminal in gateway
// mode without [skm] of its own verifies Su Kang Codes through its
// gateway.
func (a *agent) buildVerifiers(prev *carried) error {
	cfg, p := a.cfg, a.cfg.Platform
	httpc, err := verify.NewHTTPClient(verify.HTTPOptions{ConnectTimeout: p.ConnectTimeout.D(), RequestTimeout: p.RequestTimeout.D(), CAFile: p.CAFile})
	if err != nil {
		return err
	}
	if prev.platform != nil && reflect.DeepEqual(settingsOf(cfg), prev.settings) {
		a.platform = prev.platform
		a.log.Debug().Msg("platform settings unchanged: appToken, breaker and pauses kept")
	} else {
		if c, ok := prev.platform.(io.Closer); ok {
			_ = c.Close() // the replaced client leaves the gateway election
		}
		if a.platform, err = newPlatformClient(cfg, httpc, a.obs.observePlatformCall, a.log); err != nil {
			return err
		}
	}
	s := cfg.SKM
	if !s.Enabled {
		if gw, ok := a.platform.(*verify.Gateway); ok {
			a.skm = gw
		}
		return nil
	}
	skmHTTP, err := verify.NewHTTPClient(verify.HTTPOptions{ConnectTimeout: p.ConnectTimeout.D(), RequestTimeout: s.Timeout.D(), CAFile: p.CAFile})
	if err != nil {
		return err
	}
	a.skm = verify.NewSKM(verify.SKMOptions{BaseURL: s.BaseURL, ScanPath: s.ScanPath, IDPath: s.IDPath, AppMark: s.AppMark, AppSecret: s.AppSecret.Reveal(),
		SignOrder: s.SignOrder, TimestampUnit: s.TimestampUnit, Cipher: s.Cipher, CipherKey: s.CipherKey.Reveal(), AuthHeader: s.AuthHeader,
		Source: s.Source, Position: s.Position, VerifierDept: s.VerifierDept, VerifierName: s.VerifierName, VerifierPhone: s.VerifierPhone,
		HTTP: skmHTTP, Log: logging.Component(a.log, "skm")})
	return nil
}

// buildSinks builds the HIS sinks: the local API (and its server), the
// HTTP push and HL7.
func (a *agent) buildSinks(parser *code.Parser) error {
	cfg, log := a.cfg, a.log
	if api := cfg.HIS.API; api.Enabled {
		a.api = his.NewAPI(his.APIOptions{AllowedOrigins: api.AllowedOrigins, AllowedHosts: api.AllowedHosts, Token: api.Token.Reveal(),
			MaxStreamClients: api.MaxStreamClients, CheckQRCode: ehcCheck(parser), CheckIDNumber: checkIDNumber,
			DefaultDepartment: visit.DefaultReport(a.reports).Department, Status: a.status, Metrics: a.obs.handler(),
			Reload: func() error { return a.reload() }, Log: logging.Component(log, "his-api")})
		a.pipe.AddSink("api", a.api)
		srv := &http.Server{Addr: api.Listen, Handler: a.api.Handler(), ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		srv.RegisterOnShutdown(a.api.CloseStreams) // a reload's new API takes the HIS's reconnects
		if err := a.addServer(srv, api.TLSCert, api.TLSKey); err != nil {
			return fmt.Errorf("his.api: %w", err)
		}
	}
	if p := cfg.HIS.Push; p.Enabled {
		a.pipe.AddSink("push", his.NewPush(his.PushOptions{URL: p.URL, Secret: []byte(p.Secret.Reveal()), Timeout: p.Timeout.D(),
			Retries: p.Retries, Log: logging.Component(log, "his-push")}))
	}
	if h := cfg.HIS.HL7; h.Enabled {
		s, err := his.NewHL7(his.HL7Options{Addr: h.Addr, Charset: h.Charset, Template: h.Template, SendingApp: h.SendingApp,
			SendingFacility: h.SendingFacility, ReceivingApp: h.ReceivingApp, ReceivingFacility: h.ReceivingFacility,
			Timeout: h.Timeout.D(), Log: logging.Component(log, "his-hl7")})
		if err != nil {
			return err
		}
		a.pipe.AddSink("hl7", s)
	}
	return nil
}

// buildGateway builds the gateway server for terminals, when enabled.
func (a *agent) buildGateway() error {
	g := a.cfg.Gateway
	if !g.Enabled {
		return nil
	}
	var ehc *verify.EHC
	var node *ha.Node
	switch c := a.platform.(type) {
	case *verify.EHC:
		ehc = c
	case *haEHC:
		ehc, node = c.EHC, c.node
	default:
		return errors.New("gateway.enabled needs platform.mode = \"direct\"")
	}
	terms := map[string]string{}
	for _, t := range g.Terminals {
		terms[t.ID] = t.Token.Reveal()
	}
	status := func() any { return ehc.Status() }
	if node != nil {
		status = func() any {
			return struct {
				verify.Status
				HA ha.Status `json:"ha"`
			}{ehc.Status(), node.Status()}
		}
	}
	a.fleet = a.fleetRegistry(node, a.carried.fleet)
	gs := gateway.New(gatewayUpstream{EHC: ehc, skm: a.skm}, terms, status, logging.Component(a.log, "gateway")).WithFleet(a.fleet, a.fleetOptions())
	h := gs.Handler()
	if node != nil && !g.HA.FollowersServe {
		h = leaderOnly(node, h)
	}
	return a.addServer(&http.Server{Addr: g.Listen, Handler: h, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}, g.TLSCert, g.TLSKey)
}
