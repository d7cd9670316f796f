#!/usr/bin/env bash
# End-to-end demo on the embedded sample configuration: a fake serial
# scanner (pty) types a static e-Health Card code, a dynamic one, an ID card
# number, a hospital card, a Su Kang Code and a garbage string; the agent
# verifies them against the fake platform and logs each outcome, masked.
# Needs only Go (and a Linux or macOS shell). Cleans up after itself.
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

echo "== starting the fake platform"
"$work/fakeplatform" -addr 127.0.0.1:0 -ready-file "$work/platform.addr" 2>"$work/platform.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/platform.addr" ] && break; sleep 0.05; done
pp=$(cat "$work/platform.addr")
echo "   http://$pp"

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
  -e "s#^format = \"auto\"#format = \"console\"#" \
  -e "s#^\# data_dir = .*#data_dir = \"$work/data\"#" \
  -e "/^\[skm\]/,/^\[code\]/ s#^enabled = false#enabled = true\nbase_url = \"http://$pp\"\napp_mark = \"demo-appmark\"\napp_secret = \"demo-skm-secret\"\ncipher_key = \"0123456789abcdef\"#" \
  >"$work/scanagent.toml"
"$work/scanagent" config check -c "$work/scanagent.toml"

echo "== starting the agent"
"$work/scanagent" run -c "$work/scanagent.toml" 2>"$work/agent.log" &
agent=$!
pids+=($agent)
for _ in $(seq 100); do grep -q "scanner connected" "$work/agent.log" && break; sleep 0.05; done

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
sleep 1

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
echo "demo ok: 6 scans handled, 1 repeat suppressed"
