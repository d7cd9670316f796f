// Package config owns scanagent's configuration file: one struct with
// defaults filled in code, strict TOML parsing (unknown keys are errors that
// name file:line), validation that names field paths, and secrets resolved
// from the file, SCANAGENT_* environment variables or *_file paths. Only this
// package and internal/agent know the file format.
package config

import (
	"path/filepath"
	"time"

	"scanagent/configs"
)

// Sample is the annotated sample configuration (configs/scanagent.toml),
// embedded so `scanagent config sample` can print it.
var Sample = configs.Sample

// Config is the whole configuration.
type Config struct {
	Agent    Agent    `toml:"agent"`
	Log      Log      `toml:"log"`
	Platform Platform `toml:"platform"`
	Gateway  Gateway  `toml:"gateway"`
	SKM      SKM      `toml:"skm"`
	Code     Code     `toml:"code"`
	Sources  []Source `toml:"source"`
	Queue    Queue    `toml:"queue"`
	HIS      HIS      `toml:"his"`

	// Path is the file the configuration was read from ("" for defaults).
	Path string `toml:"-"`
}

// Agent holds process-wide settings.
type Agent struct {
	TerminalID      string   `toml:"terminal_id"`
	DataDir         string   `toml:"data_dir"`
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// Offline decides what happens to a static e-Health Card code while the
	// platform cannot be reached: "refuse" or "unverified".
	Offline string `toml:"offline"`
	// PlatformBudget is how long a scan waits for the platform before the
	// HIS is told "platform slow" (or, for a static code under offline =
	// "unverified", gets it unverified).
	PlatformBudget Duration `toml:"platform_budget"`
}

// Log configures logging.
type Log struct {
	Level      string `toml:"level"`
	Format     string `toml:"format"` // auto, json, console
	File       string `toml:"file"`
	MaxSizeMB  int    `toml:"max_size_mb"`
	MaxBackups int    `toml:"max_backups"`
	MaxAgeDays int    `toml:"max_age_days"`
}

// Platform configures the e-Health Card open platform client.
type Platform struct {
	// Mode is "direct" (this agent holds appId/appSecret), "gateway" (this
	// agent calls a scanagent gateway on the LAN) or "off" (no platform:
	// only ID numbers and custom codes are handed over).
	Mode           string   `toml:"mode"`
	AppID          string   `toml:"app_id"`
	AppSecret      Secret   `toml:"app_secret"`
	AppSecretFile  string   `toml:"app_secret_file"`
	HospitalID     string   `toml:"hospital_id"`
	BaseURL        string   `toml:"base_url"`
	TokenURL       string   `toml:"token_url"`
	URLs           APIURLs  `toml:"urls"`
	CAFile         string   `toml:"ca_file"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	RequestTimeout Duration `toml:"request_timeout"`

	// verifyQRCode fields.
	MedicalStep  string `toml:"medical_step"`
	UseCityCode  string `toml:"use_city_code"`
	UseCityName  string `toml:"use_city_name"`
	HospitalCode string `toml:"hospital_code"`
	HospitalName string `toml:"hospital_name"`
	ChannelCode  string `toml:"channel_code"`
	ChannelName  string `toml:"channel_name"`

	// ReportIDField is the name reportHISData uses for the ID number
	// ("idCardNumber" per the guide's table, "idCard" per its example).
	ReportIDField string `toml:"report_id_field"`

	Retries         int      `toml:"retries"`
	BreakerFailures int      `toml:"breaker_failures"`
	BreakerCooldown Duration `toml:"breaker_cooldown"`
	RateLimitPause  Duration `toml:"rate_limit_pause"`

	// Gateway mode: where the gateway is and this terminal's credential.
	// GatewayURLs lists several gateways in order of preference (the
	// terminal moves to the next when one cannot be reached and returns
	// to the first when it recovers); GatewayURL is the one-gateway form.
	GatewayURL       string   `toml:"gateway_url"`
	GatewayURLs      []string `toml:"gateway_urls"`
	GatewayToken     Secret   `toml:"gateway_token"`
	GatewayTokenFile string   `toml:"gateway_token_file"`
	// HeartbeatInterval: a terminal in gateway mode tells its gateway how
	// it is this often, for the fleet view (0 = never). Campus groups
	// terminals in that view and its metrics.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	Campus            string   `toml:"campus"`
}

// Gateways is the list of gateways a terminal calls, most preferred first:
// gateway_urls, or gateway_url as a list of one.
func (p Platform) Gateways() []string {
	if len(p.GatewayURLs) > 0 {
		return p.GatewayURLs
	}
	if p.GatewayURL != "" {
		return []string{p.GatewayURL}
	}
	return nil
}

// APIURLs overrides the URL of single APIs; empty means BaseURL + "/" + API.
type APIURLs struct {
	GetHealthCardByQRCode string `toml:"get_health_card_by_qr_code"`
	VerifyQRCode          string `toml:"verify_qr_code"`
	ReportHISData         string `toml:"report_his_data"`
	BindCardRelation      string `toml:"bind_card_relation"`
}

// Gateway makes this agent serve the platform API to terminal agents.
type Gateway struct {
	Enabled   bool       `toml:"enabled"`
	Listen    string     `toml:"listen"`
	TLSCert   string     `toml:"tls_cert"`
	TLSKey    string     `toml:"tls_key"`
	Terminals []Terminal `toml:"terminal"`
	// The fleet view (GET /v1/fleet, the page /fleet) of the terminals'
	// heartbeats, for IT staff with FleetToken (none: not served). A
	// terminal is online while its last heartbeat is younger than
	// OfflineAfter, silent once it is older than SilentAfter.
	FleetToken     Secret   `toml:"fleet_token"`
	FleetTokenFile string   `toml:"fleet_token_file"`
	OfflineAfter   Duration `toml:"offline_after"`
	SilentAfter    Duration `toml:"silent_after"`
	// HA runs several gateways for one appId: one of them, elected on
	// etcd, fetches the appToken and shares it with the others.
	HA HA `toml:"ha"`
}

// HA configures high availability of the gateway: leader election and
// the shared appToken on an etcd cluster. Off, a gateway holds its token
// alone, as a single gateway always did.
type HA struct {
	Enabled   bool     `toml:"enabled"`
	Endpoints []string `toml:"endpoints"`
	// TLS towards etcd: a client certificate and key (both or neither)
	// and the CA that signed etcd's server certificates.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	CAFile  string `toml:"ca_file"`
	// Prefix is the root of this agent's keys in etcd.
	Prefix string `toml:"prefix"`
	// LeaseTTL is the lease of a gateway's election key: a gateway that
	// stops renewing it (crash, partition) loses the leadership this long
	// after its last renewal.
	LeaseTTL Duration `toml:"lease_ttl"`
	// TokenKey seals the token stored in etcd (AES-256-GCM): 32 bytes as
	// hex or Base64, the same on every gateway.
	TokenKey     Secret `toml:"token_key"`
	TokenKeyFile string `toml:"token_key_file"`
	// MinFetchInterval spaces getAppToken calls across all gateways.
	MinFetchInterval Duration `toml:"min_fetch_interval"`
	// TokenWait bounds how long a gateway waits for the leader's new
	// token after the platform refused the current one.
	TokenWait Duration `toml:"token_wait"`
	// FollowersServe: followers call the platform with the shared token.
	// false: only the leader serves terminals, followers answer 503 (for a
	// platform that binds a token to the egress IP that fetched it).
	FollowersServe bool `toml:"followers_serve"`
}

// Terminal is one terminal allowed to call the gateway.
type Terminal struct {
	ID        string `toml:"id"`
	Token     Secret `toml:"token"`
	TokenFile string `toml:"token_file"`
}

// SKM configures the Su Kang Code client. Every item the standard leaves
// illegible is a setting here, with the documented guess as default.
type SKM struct {
	Enabled       bool     `toml:"enabled"`
	BaseURL       string   `toml:"base_url"`
	ScanPath      string   `toml:"scan_path"`
	IDPath        string   `toml:"id_path"`
	AppMark       string   `toml:"app_mark"`
	AppSecret     Secret   `toml:"app_secret"`
	AppSecretFile string   `toml:"app_secret_file"`
	SignOrder     []string `toml:"sign_order"`
	TimestampUnit string   `toml:"timestamp_unit"` // ms or s
	Cipher        string   `toml:"cipher"`         // aes-128-ecb, sm4-ecb or none
	CipherKey     Secret   `toml:"cipher_key"`
	CipherKeyFile string   `toml:"cipher_key_file"`
	AuthHeader    string   `toml:"auth_header"`
	Source        string   `toml:"source"`
	Position      string   `toml:"position"`
	VerifierDept  string   `toml:"verifier_dept"`
	VerifierName  string   `toml:"verifier_name"`
	VerifierPhone string   `toml:"verifier_phone"`
	Hosts         []string `toml:"hosts"`
	Timeout       Duration `toml:"timeout"`
}

// Code configures payload recognition.
type Code struct {
	Debounce Duration     `toml:"debounce"`
	Custom   []CustomCode `toml:"custom"`
}

// CustomCode is a hospital-defined code type.
type CustomCode struct {
	Name    string `toml:"name"`
	Pattern string `toml:"pattern"`
}

// Source is one scanner.
type Source struct {
	Name string `toml:"name"`
	Type string `toml:"type"` // serial, hid, evdev

	// Serial: by port name, or by USB VID/PID (+ serial number).
	Port         string   `toml:"port"`
	VID          string   `toml:"vid"`
	PID          string   `toml:"pid"`
	SerialNumber string   `toml:"serial_number"`
	Baud         int      `toml:"baud"`
	DataBits     int      `toml:"data_bits"`
	Parity       string   `toml:"parity"`
	StopBits     string   `toml:"stop_bits"`
	Suffix       string   `toml:"suffix"` // cr, lf, crlf, none, or 0xNN
	Gap          Duration `toml:"gap"`
	MaxFrame     int      `toml:"max_frame"`

	// HID-POS.
	Layout string `toml:"layout"` // auto, honeywell, newland
	// evdev keyboard wedge (Linux).
	Device string `toml:"device"`

	// Usage report defaults for scans from this source.
	Scene       string `toml:"scene"`
	CardChannel string `toml:"card_channel"`
	Department  string `toml:"department"`
}

// Queue configures the durable outbox.
type Queue struct {
	Path        string   `toml:"path"`
	MaxRecords  int      `toml:"max_records"`
	MaxBytes    int64    `toml:"max_bytes"`
	FullPolicy  string   `toml:"full_policy"` // reject, drop_oldest
	BatchWindow Duration `toml:"batch_window"`
	Concurrency int      `toml:"concurrency"`
	RetryMin    Duration `toml:"retry_min"`
	RetryMax    Duration `toml:"retry_max"`
	// Encrypt seals record values (AES-256-GCM). Without a key (key,
	// key_file, SCANAGENT_QUEUE_KEY) one is generated on first start into
	// GeneratedKeyPath, readable by the service alone.
	Encrypt bool   `toml:"encrypt"`
	Key     Secret `toml:"key"`
	KeyFile string `toml:"key_file"`
}

// HIS configures the hand-off to the hospital information system.
type HIS struct {
	API  APIConf  `toml:"api"`
	Push PushConf `toml:"push"`
	HL7  HL7Conf  `toml:"hl7"`
}

// PushConf POSTs every scan outcome to a client/server HIS.
type PushConf struct {
	Enabled    bool     `toml:"enabled"`
	URL        string   `toml:"url"`
	Secret     Secret   `toml:"secret"`
	SecretFile string   `toml:"secret_file"`
	Timeout    Duration `toml:"timeout"`
	Retries    int      `toml:"retries"`
}

// HL7Conf sends an HL7 v2 message over MLLP for each identified patient.
type HL7Conf struct {
	Enabled           bool     `toml:"enabled"`
	Addr              string   `toml:"addr"`
	Charset           string   `toml:"charset"`
	Template          string   `toml:"template"`
	SendingApp        string   `toml:"sending_app"`
	SendingFacility   string   `toml:"sending_facility"`
	ReceivingApp      string   `toml:"receiving_app"`
	ReceivingFacility string   `toml:"receiving_facility"`
	Timeout           Duration `toml:"timeout"`
}

// APIConf is the local HTTP API.
type APIConf struct {
	Enabled        bool     `toml:"enabled"`
	Listen         string   `toml:"listen"`
	TLSCert        string   `toml:"tls_cert"`
	TLSKey         string   `toml:"tls_key"`
	AllowRemote    bool     `toml:"allow_remote"`
	AllowedOrigins []string `toml:"allowed_origins"`
	Token          Secret   `toml:"token"`
	TokenFile      string   `toml:"token_file"`
	// AllowedHosts are Host header values (names or IPs, with or without
	// port) accepted besides loopback and the machine's own names and
	// addresses: the guard against DNS rebinding.
	AllowedHosts []string `toml:"allowed_hosts"`
	// MaxStreamClients caps concurrent WebSocket + SSE clients; beyond it
	// the API answers 503.
	MaxStreamClients int `toml:"max_stream_clients"`
}

// Default returns the configuration every file starts from.
func Default() Config {
	return Config{
		Agent: Agent{
			DataDir:         defaultDataDir(),
			ShutdownTimeout: Duration(10 * time.Second),
			Offline:         "refuse",
			PlatformBudget:  Duration(3 * time.Second),
		},
		Log: Log{Level: "info", Format: "auto", MaxSizeMB: 20, MaxBackups: 5, MaxAgeDays: 30},
		Platform: Platform{
			Mode:            "direct",
			BaseURL:         "https://p-healthopen.tengmed.com/rest/auth/HealthCard/HealthOpenPlatform/ISVOpenObj",
			TokenURL:        "https://p-healthopen.tengmed.com/rest/auth/HealthCard/HealthOpenAuth/AuthObj/getAppToken",
			ConnectTimeout:  Duration(3 * time.Second),
			RequestTimeout:  Duration(5 * time.Second),
			MedicalStep:     "010101",
			ReportIDField:   "idCardNumber",
			Retries:         2,
			BreakerFailures: 3,
			BreakerCooldown: Duration(30 * time.Second),
			RateLimitPause:  Duration(time.Hour),
			// Three heartbeats fit in the gateways' default offline_after.
			HeartbeatInterval: Duration(30 * time.Second),
		},
		Gateway: Gateway{Listen: "0.0.0.0:8471", OfflineAfter: Duration(90 * time.Second), SilentAfter: Duration(5 * time.Minute), HA: HA{Prefix: "/scanagent/", LeaseTTL: Duration(10 * time.Second),
			MinFetchInterval: Duration(time.Minute), TokenWait: Duration(5 * time.Second), FollowersServe: true}},
		SKM: SKM{
			ScanPath:      "/api/skm/scanVerify",
			IDPath:        "/api/skm/idVerify",
			SignOrder:     []string{"appmark", "appsecret", "timestamp"},
			TimestampUnit: "ms",
			Cipher:        "aes-128-ecb",
			AuthHeader:    "auth",
			Hosts:         []string{"jszwfw.gov.cn"},
			Timeout:       Duration(5 * time.Second),
		},
		Code: Code{Debounce: Duration(2 * time.Second)},
		Queue: Queue{
			MaxRecords:  1_000_000,
			MaxBytes:    256 << 20,
			FullPolicy:  "reject",
			Concurrency: 4,
			RetryMin:    Duration(time.Second),
			RetryMax:    Duration(5 * time.Minute),
			Encrypt:     true,
		},
		HIS: HIS{
			API:  APIConf{Enabled: true, Listen: "127.0.0.1:8470", MaxStreamClients: 64},
			Push: PushConf{Timeout: Duration(2 * time.Second), Retries: 2},
			HL7:  HL7Conf{Charset: "utf-8", SendingApp: "SCANAGENT", Timeout: Duration(3 * time.Second)},
		},
	}
}

// sourceDefaults fills the zero fields of a source.
func (s *Source) applyDefaults() {
	if s.Type == "" {
		s.Type = "serial"
	}
	if s.Baud == 0 {
		s.Baud = 9600
	}
	if s.DataBits == 0 {
		s.DataBits = 8
	}
	if s.Parity == "" {
		s.Parity = "none"
	}
	if s.StopBits == "" {
		s.StopBits = "1"
	}
	if s.Suffix == "" {
		s.Suffix = "cr"
	}
	if s.Gap == 0 {
		s.Gap = Duration(50 * time.Millisecond)
	}
	if s.MaxFrame == 0 {
		s.MaxFrame = 4096
	}
	if s.Layout == "" {
		s.Layout = "auto"
	}
}

// GeneratedKeyPath is where the outbox's key is generated when encryption
// is on and no key is configured: outbox.key beside the outbox.
func (q Queue) GeneratedKeyPath() string { return filepath.Join(filepath.Dir(q.Path), "outbox.key") }
