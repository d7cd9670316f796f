#!/usr/bin/env bash
# End-to-end demo on the embedded sample configuration: a fake serial
# scanner (pty) types a static e-Health Card code, a dynamic one, an ID card
# number, a hospital card, a Su Kang Code and a garbage string; the agent
# verifies them against the fake platform, hands each patient to the fake
# HIS (HTTP push, HL7 over MLLP, and — when Chromium is installed — the
# browser HIS page, which posts the usage report back), and the reports reach
# the fake platform through the outbox. Needs only Go (and curl); Chromium is
# optional. Cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== building"
go build -o "$work/scanagent" ./cmd/scanagent
go build -o "$work/fakeplatform" ./test/fakeplatform
go build -o "$work/fakescanner" ./test/fakescanner
go build -o "$work/fakehis" ./test/fakehis

echo "== starting the fake platform"
"$work/fakeplatform" -addr 127.0.0.1:0 -ready-file "$work/platform.addr" 2>"$work/platform.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/platform.addr" ] && break; sleep 0.05; done
pp=$(cat "$work/platform.addr")
echo "   http://$pp"

echo "== starting the fake HIS (push receiver, HL7 MLLP listener, browser page)"
"$work/fakehis" -addr 127.0.0.1:0 -mllp 127.0.0.1:0 -secret demo-push-secret-0123 -ready-file "$work/his.addr" 2>"$work/his.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/his.addr" ] && break; sleep 0.05; done
his=$(sed -n 1p "$work/his.addr"); mllp=$(sed -n 2p "$work/his.addr")
echo "   http://$his  (HL7 on $mllp)"

echo "== starting the fake scanner on a pty: $work/scanner"
mkfifo "$work/keys"
"$work/fakescanner" -link "$work/scanner" -baud 9600 -suffix cr <"$work/keys" 2>"$work/scanner.log" &
pids+=($!)
exec 3>"$work/keys"
for _ in $(seq 100); do [ -e "$work/scanner" ] && break; sleep 0.05; done

echo "== writing a temporary config from the embedded sample (scanagent config sample)"
# Point the sample at the fakes, enable the Su Kang Code client with the
# fake's demo credentials, log in console format, keep data in $work.
"$work/scanagent" config sample | sed \
  -e "s#127.0.0.1:8480#$pp#g" \
  -e "s#^port = .*#port = \"$work/scanner\"#" \
  -e "s#^listen = \"127.0.0.1:8470\"#listen = \"127.0.0.1:0\"#" \
  -e "s#^allowed_origins = .*#allowed_origins = [\"http://$his\"]#" \
  -e "s#^format = \"auto\"#format = \"console\"#" \
  -e "s#^\# data_dir = .*#data_dir = \"$work/data\"#" \
  -e "/^\[skm\]/,/^\[code\]/ s#^enabled = false#enabled = true\nbase_url = \"http://$pp\"\napp_mark = \"demo-appmark\"\napp_secret = \"demo-skm-secret\"\ncipher_key = \"0123456789abcdef\"#" \
  >"$work/scanagent.toml"
# Turn on the HTTP push and HL7 sinks towards the fake HIS.
sed -i \
  -e "/^\[his.push\]/,/^\[his.hl7\]/ s#^enabled = false#enabled = true\nurl = \"http://$his/push\"\nsecret = \"demo-push-secret-0123\"#" \
  -e "/^\[his.hl7\]/,\$ s#^enabled = false#enabled = true\naddr = \"$mllp\"#" \
  "$work/scanagent.toml"
"$work/scanagent" config check -c "$work/scanagent.toml"

echo "== starting the agent"
"$work/scanagent" run -c "$work/scanagent.toml" 2>"$work/agent.log" &
agent=$!
pids+=($agent)
for _ in $(seq 100); do grep -q "scanner connected" "$work/agent.log" && break; sleep 0.05; done
api=$(grep -o 'INF listening addr=[0-9.:]*' "$work/agent.log" | head -1 | sed 's/.*addr=//')
browser=""
for b in chromium chromium-browser google-chrome; do command -v "$b" >/dev/null && browser=$b && break; done
if [ -n "$browser" ]; then
  echo "== opening the browser HIS page in headless $browser: http://$his/?agent=http://$api"
  "$browser" --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --user-data-dir="$work/chrome" "http://$his/?agent=http://$api" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -fsS "http://$his/_fake/stats" 2>/dev/null | grep -q ws-open && break; sleep 0.1; done
else
  echo "== (no Chromium: the browser HIS page is at http://$his/?agent=http://$api while the demo runs)"
fi

static="C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:1"
# A fresh dynamic code of card 1, minted by the fake (it expires in 5 min).
dynamic=$(curl -fsS -X POST -d '{"card":1}' "http://$pp/_fake/dynamic" 2>/dev/null | sed -E 's/.*"qrCodeText":"([^"]+)".*/\1/' || true)
[ -n "$dynamic" ] || dynamic="C7DA29345B6DF90A6F5BBEBD73EBE2EDA26F341A6CFEEEB1210A1B2C3D4E5F60:0:B0E3CC5F50EF5DC663F094C985B58312::35020001001"

echo "== typing six codes on the fake scanner (9600 baud, CR suffix), the first one held for 600 ms"
printf '%s\n%s\n' "$static" "$static" >&3   # a held trigger: the repeat is suppressed
sleep 0.6
for code in "$dynamic" "432901198810228888" "HC0012345678" "https://jsstm.jszwfw.gov.cn/jkm/2?t=YELLOW0002" "hello, world"; do
  printf '%s\n' "$code" >&3
  sleep 0.3
done
sleep 2

echo
echo "== what the fake HIS received"
curl -fsS "http://$his/_fake/stats" | tr ',' '\n' | grep -oE '"(kind|name)":"[^"]*"|"(hl7|browser|badPushes)":[^]]*' | sed 's/^/   /' | head -30 || true
echo "== usage reports the fake platform accepted (one per visit: the static code by the agent, scene 010101 from the source settings; the ID card by the browser HIS, 0101051; the dynamic code was counted by verifyQRCode)"
curl -fsS "http://$pp/_fake/stats" | grep -oE '"api":"[a-zA-Z]+","requestId":"[^"]*","req":\{[^}]*\}' | sed -E 's/"requestId":"[^"]*",//; s/"qrCodeText":"([A-F0-9]{6})[^"]*"/"qrCodeText":"\1…"/; s/^/   /' || true

kill -INT "$agent"
wait "$agent" 2>/dev/null || true
echo
echo "== the agent's log (personal data masked)"
grep -E "scan |agent ready|connected|stopped" "$work/agent.log" | sed 's/^/   /'
n=$(grep -c " scan " "$work/agent.log" || true)
if [ "$n" -ne 6 ]; then
  echo "demo FAILED: expected 6 outcomes, saw $n; full agent log:" >&2
  cat "$work/agent.log" >&2
  exit 1
fi
echo
reports=$(curl -fsS "http://$pp/_fake/stats" | grep -o '"api":"reportHISData"' | wc -l)
pushes=$(curl -fsS "http://$his/_fake/stats" | grep -o '"received"' | wc -l)
echo "demo ok: 6 scans handled, 1 repeat suppressed, $pushes pushed to the HIS, $reports usage reports delivered"
