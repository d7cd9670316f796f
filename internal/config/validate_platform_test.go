package config

import (
	"strings"
	"testing"
)

// validDirect is a minimal configuration that can produce every platform
// call: verifyQRCode's required fields and a source whose report settings
// come from the guide's §3.3 tables.
const validDirect = `
[platform]
app_id = "a"
app_secret = "s"
hospital_id = "90003"
base_url = "http://127.0.0.1:1/x"
token_url = "http://127.0.0.1:1/t"
use_city_code = "350200"
use_city_name = "厦门市"
hospital_code = "90003"
hospital_name = "示例医院"
[[source]]
name = "counter"
port = "/dev/ttyACM0"
scene = "010101"
card_channel = "0100"
department = "内科"
`

func parseValid(t *testing.T) Config {
	t.Helper()
	c, err := Parse([]byte(validDirect), "v.toml", noEnv)
	if err != nil {
		t.Fatalf("base config does not validate:\n%v", err)
	}
	return c
}

// asTerminal turns c into a terminal that calls a gateway: no secret and no
// verifyQRCode fields of its own (its gateway has them).
func asTerminal(c *Config) {
	p := &c.Platform
	p.Mode, p.GatewayURL, p.GatewayToken = "gateway", "https://gw.lan:8471", "0123456789abcdef"
	p.AppID, p.AppSecret, p.HospitalID = "", "", ""
	p.UseCityCode, p.UseCityName, p.HospitalCode, p.HospitalName = "", "", "", ""
}

// wantFieldErrors checks that errs are exactly the wanted "path: message
// fragment" lines, in any order.
func wantFieldErrors(t *testing.T, errs Errors, want []string) {
	t.Helper()
	got := make([]string, len(errs))
	for i, e := range errs {
		got[i] = e.Error()
	}
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%s\nwant:\n%s", len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range want {
		path, frag, _ := strings.Cut(w, ": ")
		found := false
		for _, g := range got {
			if strings.HasPrefix(g, path+": ") && strings.Contains(g, frag) {
				found = true
			}
		}
		if !found {
			t.Errorf("no error %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestPlatformFieldsAndCodeTables(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   []string
	}{
		{"valid", func(*Config) {}, nil},
		{"empty use_city_code", func(c *Config) { c.Platform.UseCityCode = "" },
			[]string{"platform.use_city_code: required"}},
		{"blank use_city_name", func(c *Config) { c.Platform.UseCityName = "  " },
			[]string{"platform.use_city_name: required"}},
		{"no hospital code or name", func(c *Config) { c.Platform.HospitalCode, c.Platform.HospitalName = "", "" },
			[]string{"platform.hospital_code: required", "platform.hospital_name: required"}},
		{"medical_step not in §3.3.1", func(c *Config) { c.Platform.MedicalStep = "999999" },
			[]string{`platform.medical_step: "999999" is not a 用卡环节 code`}},
		{"medical_step empty", func(c *Config) { c.Platform.MedicalStep = "" },
			[]string{"platform.medical_step: required"}},
		{"medical_step other", func(c *Config) { c.Platform.MedicalStep = "00000" }, nil},
		{"gateway server needs the fields too", func(c *Config) {
			c.Gateway.Enabled = true
			c.Gateway.Terminals = []Terminal{{ID: "t1", Token: "0123456789abcdef"}}
			c.Platform.HospitalName = ""
		}, []string{"platform.hospital_name: required"}},
		{"terminal in gateway mode does not need them", asTerminal, nil},
		{"terminal still checks its medical_step", func(c *Config) { asTerminal(c); c.Platform.MedicalStep = "999999" },
			[]string{"platform.medical_step: "}},
		{"platform off needs none", func(c *Config) {
			c.Platform = Default().Platform
			c.Platform.Mode = "off"
		}, nil},
		{"scene not in §3.3.1", func(c *Config) { c.Sources[0].Scene = "999999" },
			[]string{`source[0].scene: "999999" is not a 用卡环节 code`}},
		{"digits that are no scene", func(c *Config) { c.Sources[0].Scene = "0101" },
			[]string{"source[0].scene: "}},
		{"registration without department", func(c *Config) { c.Sources[0].Department = "" },
			[]string{"source[0].department: required for scene 010101"}},
		{"appointment without department", func(c *Config) { c.Sources[0].Scene, c.Sources[0].Department = "0101011", " " },
			[]string{"source[0].department: required for scene 0101011"}},
		{"same-day registration without department", func(c *Config) { c.Sources[0].Scene, c.Sources[0].Department = "0101012", "" },
			[]string{"source[0].department: required for scene 0101012"}},
		{"payment needs no department", func(c *Config) { c.Sources[0].Scene, c.Sources[0].Department = "010105", "" }, nil},
		{"terminal reports need a department too", func(c *Config) { asTerminal(c); c.Sources[0].Department = "" },
			[]string{"source[0].department: required"}},
		{"channel not in §3.3.3", func(c *Config) { c.Sources[0].CardChannel = "01" },
			[]string{`source[0].card_channel: "01" is not a 用卡渠道 of the guide`}},
		{"self-service kiosk", func(c *Config) { c.Sources[0].CardChannel = "0200" }, nil},
		{"scene without channel", func(c *Config) { c.Sources[0].CardChannel = "" },
			[]string{"source[0].card_channel: required when scene is set"}},
		{"channel without scene", func(c *Config) { c.Sources[0].Scene, c.Sources[0].Department = "", "" },
			[]string{"source[0].scene: required when card_channel is set"}},
		{"source without report settings", func(c *Config) { c.Sources[0].Scene, c.Sources[0].CardChannel = "", "" }, nil},
		{"second source named by index", func(c *Config) {
			s := c.Sources[0]
			s.Name, s.Scene, s.Department = "kiosk", "0101012", ""
			c.Sources = append(c.Sources, s)
		}, []string{"source[1].department: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := parseValid(t)
			tt.mutate(&c)
			wantFieldErrors(t, c.Validate(), tt.want)
		})
	}
}

// The examples of issue 12 item 5, through the same Parse that `config
// check` and `run` use.
func TestConfigCheckRefusesCallsThePlatformWouldReject(t *testing.T) {
	for _, tt := range []struct{ old, new, want string }{
		{`use_city_code = "350200"`, `use_city_code = ""`, "platform.use_city_code: required"},
		{`[[source]]`, "medical_step = \"999999\"\n[[source]]", "platform.medical_step: "},
		{`department = "内科"`, ``, "source[0].department: required for scene 010101"},
	} {
		in := strings.Replace(validDirect, tt.old, tt.new, 1)
		_, err := Parse([]byte(in), "c.toml", noEnv)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("with %s: err = %v, want %q", tt.new, err, tt.want)
		}
	}
}
