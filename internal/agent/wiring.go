package agent

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"scanagent/internal/card"
	"scanagent/internal/code"
	"scanagent/internal/config"
	"scanagent/internal/ha"
	"scanagent/internal/logging"
	"scanagent/internal/scanner"
	"scanagent/internal/verify"
	"scanagent/internal/visit"
)

// newPlatformClient returns the e-Health Card client of the configured
// mode, or nil when platform.mode = "off". The direct client tells observe
// of each HTTP attempt. A gateway in [gateway.ha] takes its token from an
// etcd election node that lives as long as the client (haEHC).
func newPlatformClient(cfg config.Config, httpc *http.Client, observe func(api, result string, d time.Duration), log zerolog.Logger) (platformClient, error) {
	p := cfg.Platform
	switch p.Mode {
	case "direct":
		o := verify.EHCOptions{
			AppID: p.AppID, AppSecret: p.AppSecret.Reveal(), HospitalID: p.HospitalID, BaseURL: p.BaseURL, TokenURL: p.TokenURL,
			URLs: map[string]string{
				verify.APIGetHealthCardByQRCode: p.URLs.GetHealthCardByQRCode, verify.APIVerifyQRCode: p.URLs.VerifyQRCode,
				verify.APIReportHISData: p.URLs.ReportHISData, verify.APIBindCardRelation: p.URLs.BindCardRelation,
			},
			HTTP: httpc, TerminalID: cfg.Agent.TerminalID, MedicalStep: p.MedicalStep, UseCityCode: p.UseCityCode, UseCityName: p.UseCityName,
			HospitalCode: p.HospitalCode, HospitalName: p.HospitalName, ChannelCode: p.ChannelCode, ChannelName: p.ChannelName,
			ReportIDField: p.ReportIDField, Retries: p.Retries, BreakerFailures: p.BreakerFailures, BreakerCooldown: p.BreakerCooldown.D(),
			RateLimitPause: p.RateLimitPause.D(), Observe: observe, Log: logging.Component(log, "platform"),
		}
		if !haEnabled(cfg) {
			return verify.NewEHC(o), nil
		}
		node, err := newHANode(cfg, log)
		if err != nil {
			return nil, fmt.Errorf("gateway.ha: %w", err)
		}
		o.TokenWait = cfg.Gateway.HA.TokenWait.D()
		o.Share = func(fetch func(context.Context) (string, time.Duration, error)) verify.TokenShare {
			node.Start(fetch)
			return node
		}
		return &haEHC{EHC: verify.NewEHC(o), node: node}, nil
	case "gateway":
		return verify.NewGateway(verify.GatewayOptions{URLs: p.Gateways(), Token: p.GatewayToken.Reveal(), HTTP: httpc, Retries: p.Retries,
			BreakerFailures: p.BreakerFailures, BreakerCooldown: p.BreakerCooldown.D()}), nil
	}
	return nil, nil
}

// haEnabled: this agent is a gateway sharing its token with others.
func haEnabled(cfg config.Config) bool { return cfg.Gateway.Enabled && cfg.Gateway.HA.Enabled }

// newHANode builds (without starting) the gateway's election node.
func newHANode(cfg config.Config, log zerolog.Logger) (*ha.Node, error) {
	h := cfg.Gateway.HA
	tlsConf, err := ha.TLSConfig(h.TLSCert, h.TLSKey, h.CAFile)
	if err != nil {
		return nil, err
	}
	key, err := config.DecodeKey(h.TokenKey.Reveal())
	if err != nil {
		return nil, fmt.Errorf("token_key: %w", err)
	}
	return ha.New(ha.Options{Endpoints: h.Endpoints, TLS: tlsConf, Prefix: h.Prefix, AppID: cfg.Platform.AppID, ID: cfg.Agent.TerminalID,
		LeaseTTL: h.LeaseTTL.D(), Key: key, FetchTimeout: cfg.Platform.RequestTimeout.D(), MinFetchInterval: h.MinFetchInterval.D(),
		Log: logging.Component(log, "ha")})
}

// haEHC is the e-Health Card client of a gateway in [gateway.ha] and its
// election node; closing it leaves the election (the lease is revoked, so
// another gateway leads at once).
type haEHC struct {
	*verify.EHC
	node *ha.Node
}

func (c *haEHC) Close() error { return c.node.Close() }

// leaderOnly answers terminals 503 (marked verify.UnservedHeader: not
// processed, try the next gateway) while this gateway is a follower
// ([gateway.ha] followers_serve = false); the status stays served.
func leaderOnly(node *ha.Node, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !node.Leading() {
			w.Header().Set(verify.UnservedHeader, "follower")
			http.Error(w, "this gateway is a follower and does not serve terminals (gateway.ha.followers_serve = false)", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// addServer adds an HTTP server of the agent; with a certificate it
// serves HTTPS. The pair is loaded now, so a broken file stops the start.
func (a *agent) addServer(srv *http.Server, cert, key string) error {
	return a.servers.Add(srv, cert, key)
}

// gatewayUpstream verifies a terminal's Su Kang Codes with the SKM client
// and everything else, and its reports, with the EHC client.
type gatewayUpstream struct {
	*verify.EHC
	skm visit.Verifier // nil when [skm] is off
}

func (g gatewayUpstream) Verify(ctx context.Context, r card.Request) (card.Identity, error) {
	if r.Kind == card.KindSKM {
		if g.skm == nil {
			return card.Identity{}, &card.Error{API: "verify", Class: card.Rejected, Msg: "Su Kang Codes are not accepted here ([skm] is not enabled)"}
		}
		return g.skm.Verify(ctx, r)
	}
	return g.EHC.Verify(ctx, r)
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

// ParserOptions maps the configuration onto the parser's own options.
func ParserOptions(c config.Config) code.Options {
	o := code.Options{SKMHosts: c.SKM.Hosts}
	for _, cc := range c.Code.Custom {
		o.Custom = append(o.Custom, code.CustomType{Name: cc.Name, Pattern: cc.Pattern})
	}
	return o
}
