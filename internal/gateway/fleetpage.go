package gateway

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"scanagent/internal/card"
	"scanagent/internal/fleet"
)

// The fleet page: every terminal in a table with a health colour, silent
// ones first, sortable by a link on each column title (?sort=, no
// script), in Chinese, or in English when asked (?lang=en) or when the
// browser's first language is English — as the status page, in its
// style. It reloads itself every 30 s.

//go:embed fleet.html
var fleetHTML string

var fleetPage = template.Must(template.New("fleet").Parse(fleetHTML))

// texts are the page's words: Chinese, English. {0}, {1}… are arguments.
var texts = map[string][2]string{
	"title":          {"终端总览", "Terminal fleet"},
	"meta":           {"网关 {0} · {1} 台终端 · 离线判定 {2} · 更新于 {3}", "gateway {0} · {1} terminals · offline after {2} · updated {3}"},
	"empty":          {"尚无终端发送心跳", "No terminal has sent a heartbeat yet"},
	"emptySub":       {"终端（platform.mode = \"gateway\"）每隔 platform.heartbeat_interval 发送一次心跳，收到第一次后即在此列出。", "Terminals (platform.mode = \"gateway\") send a heartbeat every platform.heartbeat_interval and are listed here from the first one."},
	"ok":             {"全部 {0} 台终端在线且正常", "All {0} terminals online and healthy"},
	"degraded":       {"需要关注", "Needs attention"},
	"critical":       {"故障：需要处理", "Not working: action needed"},
	"unreachable":    {"无法读取终端列表", "Cannot read the terminal list"},
	"unreachSub":     {"终端登记库（etcd）暂不可用，请检查网关到 etcd 的连接。", "The fleet registry (etcd) is unavailable: check this gateway's connection to etcd."},
	"summary":        {"在线 {0} · 离线 {1} · 失联 {2}（超过 {3}无心跳）· 故障 {4} · 需要关注 {5}", "{0} online · {1} offline · {2} silent (no heartbeat for more than {3}) · {4} critical · {5} need attention"},
	"c_terminal":     {"终端", "Terminal"},
	"c_campus":       {"院区", "Campus"},
	"c_state":        {"状态", "State"},
	"c_health":       {"健康", "Health"},
	"c_scanners":     {"扫码枪", "Scanners"},
	"c_queue":        {"待上报", "Queued"},
	"c_dead":         {"死信", "Dead letters"},
	"c_oldest":       {"最早待上报", "Oldest queued"},
	"c_last_scan":    {"最近扫码", "Last scan"},
	"c_last_seen":    {"最近心跳", "Last heartbeat"},
	"c_version":      {"版本", "Version"},
	"c_error":        {"最近错误", "Last error"},
	"s_online":       {"在线", "online"},
	"s_offline":      {"离线", "offline"},
	"s_silent":       {"失联 {0}", "silent {0}"},
	"h_ok":           {"正常", "ok"},
	"h_degraded":     {"需要关注", "degraded"},
	"h_critical":     {"故障", "critical"},
	"h_unconfigured": {"未配置", "not configured"},
	"h_stale":        {"（{0}）", " ({0})"},
	"scanners":       {"{0}/{1} 已连接", "{0}/{1} connected"},
	"none":           {"无", "none"},
	"ago":            {"{0}前", "{0} ago"},
	"via":            {"经网关 {0}", "via gateway {0}"},
	"seconds":        {"{0} 秒", "{0} s"},
	"minutes":        {"{0} 分钟", "{0} min"},
	"hours":          {"{0} 小时", "{0} h"},
	"days":           {"{0} 天", "{0} d"},
	"foot":           {"每 30 秒自动刷新 · 点击列标题排序，再点一次反向 · 失联的终端始终排在最前 · 时间为北京时间", "Refreshes every 30 s · click a column title to sort, again to reverse · silent terminals always come first · times in China Standard Time"},
}

// lang is the page's language, 0 Chinese or 1 English.
type lang int

// t is the text of key in l, with args in place of {0}, {1}…
func (l lang) t(key string, args ...any) string {
	s := texts[key][l]
	for i, a := range args {
		s = strings.ReplaceAll(s, fmt.Sprintf("{%d}", i), fmt.Sprint(a))
	}
	return s
}

// pageLang is ?lang=zh|en, else English when the browser's first language
// is English, else Chinese.
func pageLang(r *http.Request) lang {
	switch r.URL.Query().Get("lang") {
	case "en":
		return 1
	case "zh":
		return 0
	}
	first, _, _ := strings.Cut(r.Header.Get("Accept-Language"), ",")
	if strings.HasPrefix(strings.ToLower(strings.TrimSpace(first)), "en") {
		return 1
	}
	return 0
}

// dur words d, rounded down to its largest unit (under 10 min, with its
// seconds: "1 min 30 s").
func (l lang) dur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return l.t("seconds", int(d/time.Second))
	case d < 10*time.Minute && d%time.Minute >= time.Second:
		return l.t("minutes", int(d/time.Minute)) + " " + l.t("seconds", int(d%time.Minute/time.Second))
	case d < time.Hour:
		return l.t("minutes", int(d/time.Minute))
	case d < 48*time.Hour:
		return l.t("hours", int(d/time.Hour))
	}
	return l.t("days", int(d/(24*time.Hour)))
}

// ago words how long before now t was; "—" for a zero time.
func (l lang) ago(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return l.t("ago", l.dur(max(now.Sub(t), 0)))
}

func cst(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(card.CST).Format("2006-01-02 15:04:05")
}

// serveFleetPage renders the page.
func (s *Server) serveFleetPage(w http.ResponseWriter, r *http.Request) {
	if !s.fleet.admit(w, r, `Basic realm="scanagent fleet", charset="UTF-8"`) {
		return
	}
	now, entries, err := s.fleet.entries(r)
	d := s.fleet.page(r, now, entries, err)
	var b bytes.Buffer
	if err := fleetPage.Execute(&b, d); err != nil {
		http.Error(w, "rendering the fleet page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Vary", "Accept-Language")
	_, _ = w.Write(b.Bytes())
}

// pageData is what the template renders.
type pageData struct {
	HTMLLang, Title, Meta, Level, Banner, Sub, Empty, Foot string
	Langs                                                  []pageLink
	Columns                                                []pageColumn
	Rows                                                   []pageRow
}

type pageLink struct {
	Href, Name string
	Current    bool
}

type pageColumn struct {
	Title, Href, Arrow string
	Sorted             bool
}

type pageRow struct {
	Terminal, Campus, State, Colour, StateText, StateClass, HealthText string
	Scanners, ScannersClass, Queue, Dead, DeadClass, Oldest            string
	LastScan, LastScanAt, LastSeen, LastSeenAt, Version                string
	LastError, LastErrorAt                                             string
	Silent                                                             bool
}

// page builds the page of entries seen at now (err: the list failed).
func (f *fleetView) page(r *http.Request, now time.Time, es []fleet.Entry, err error) pageData {
	l := pageLang(r)
	sortBy := r.URL.Query().Get("sort")
	d := pageData{HTMLLang: [2]string{"zh-CN", "en"}[l], Title: l.t("title"), Empty: l.t("empty"), Foot: l.t("foot"),
		Meta: l.t("meta", f.o.Gateway, len(es), l.dur(f.o.OfflineAfter), cst(now))}
	for i, name := range [2]string{"中文", "English"} {
		d.Langs = append(d.Langs, pageLink{Href: query(sortBy, lang(i)), Name: name, Current: lang(i) == l})
	}
	col, desc := fleet.ParseSort(sortBy)
	for _, c := range fleet.Columns {
		pc := pageColumn{Title: l.t("c_" + c), Href: query(c, l)}
		if c == col {
			pc.Sorted, pc.Arrow = true, " ▼"
			if desc {
				pc.Arrow = " ▲"
			} else {
				pc.Href = query("-"+c, l)
			}
		}
		d.Columns = append(d.Columns, pc)
	}
	for _, e := range es {
		d.Rows = append(d.Rows, row(l, now, e))
	}
	d.Level, d.Banner, d.Sub = banner(l, es, f.o.SilentAfter, err)
	return d
}

// query is the page's URL with a sort order and a language.
func query(sortBy string, l lang) string {
	v := url.Values{"lang": {[2]string{"zh", "en"}[l]}}
	if sortBy != "" {
		v.Set("sort", sortBy)
	}
	return "?" + v.Encode()
}

// banner is the page's verdict on the fleet: red when a terminal is silent
// or critical, amber when one needs attention or is offline, green when
// every terminal is online and healthy.
func banner(l lang, es []fleet.Entry, silentAfter time.Duration, err error) (level, title, sub string) {
	if err != nil {
		return "unreachable", l.t("unreachable"), l.t("unreachSub")
	}
	if len(es) == 0 {
		return "empty", l.t("empty"), l.t("emptySub")
	}
	n := map[string]int{}
	for _, e := range es {
		n[e.State]++
		if e.Online {
			n[e.Colour]++
		}
	}
	sub = l.t("summary", n[fleet.StateOnline], n[fleet.StateOffline], n[fleet.StateSilent], l.dur(silentAfter), n[fleet.ColourRed], n[fleet.ColourAmber])
	switch {
	case n[fleet.StateSilent] > 0 || n[fleet.ColourRed] > 0:
		return "critical", l.t("critical"), sub
	case n[fleet.StateOffline] > 0 || n[fleet.ColourAmber] > 0:
		return "degraded", l.t("degraded"), sub
	}
	return "ok", l.t("ok", len(es)), sub
}

// row is one terminal's line.
func row(l lang, now time.Time, e fleet.Entry) pageRow {
	r := pageRow{Terminal: e.Terminal.Terminal, Campus: e.Campus, State: e.State, Colour: e.Colour, Silent: e.Silent,
		HealthText: l.t("h_" + e.Health), Queue: fmt.Sprint(e.Queue.Depth), Dead: fmt.Sprint(e.Queue.Dead), Oldest: "—",
		LastScan: l.ago(now, e.LastScan), LastScanAt: cst(e.LastScan), LastSeen: l.ago(now, e.LastSeen),
		LastSeenAt: cst(e.LastSeen), Version: e.Version,
		LastError: e.LastError, LastErrorAt: cst(e.LastErrorAt)}
	if e.Via != "" {
		r.LastSeenAt += " " + l.t("via", e.Via)
	}
	switch e.State {
	case fleet.StateOnline:
		r.StateText, r.StateClass = l.t("s_online"), "ok"
	case fleet.StateOffline:
		r.StateText, r.StateClass = l.t("s_offline"), "warn"
	default:
		r.StateText, r.StateClass = l.t("s_silent", l.dur(e.SilentFor)), "bad"
	}
	if !e.Online {
		r.HealthText = l.t("h_"+e.Health) + l.t("h_stale", l.ago(now, e.LastSeen))
	}
	up := 0
	for _, s := range e.Scanners {
		if s.Connected {
			up++
		}
	}
	r.Scanners = l.t("none")
	if len(e.Scanners) > 0 {
		r.Scanners = l.t("scanners", up, len(e.Scanners))
	}
	if up < len(e.Scanners) {
		r.ScannersClass = "bad"
	}
	if e.Queue.Depth > 0 {
		r.Oldest = l.dur(time.Duration(e.Queue.OldestPendingSeconds) * time.Second)
	}
	if e.Queue.Dead > 0 {
		r.DeadClass = "warn"
	}
	return r
}
