#!/usr/bin/env bash
# Runs pipelines/publish.sh with a model (the tiny conformance model in the build) on 30 frames
# of videotestsrc (25 fps, one embedded frame a second: frames at 0 s and 1 s) to a JSON-lines
# file and checks the file: 4 lines, embedding then match records at pts 0 and 1 s, with a
# unit-length vector of the model's width. Then, with Debian's mosquitto broker on 127.0.0.1
# (skipped if it or mosquitto_sub is missing): publish.sh to an mqtt:// location, and the
# MQTT launch line of imagebindpublish's documentation as printed there (port changed), each
# message checked with mosquitto_sub. TAP output.
#
#   tests/scripts/test-publish-pipeline.sh MODEL.gguf BUILD_PLUGIN_DIR
set -uo pipefail

model="${1:-}"
plugin_dir="${2:-}"
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ -z "$model" ] || [ ! -f "$model" ]; then
  echo "1..0 # SKIP no test model (the conformance fixtures are absent)"
  exit 0
fi

# gst-launch-1.0 needs GStreamer's own plugins (videotestsrc) besides the build's.
. "$root/tests/scripts/launch-env.sh"
ib_launch_env "$plugin_dir" publish-pipeline
export MODEL="$model"
export G_DEBUG=fatal-criticals

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..4"
if out=$(NUM_BUFFERS=30 timeout 120 "$root/pipelines/publish.sh" "$tmp/out.jsonl" "a dog" \
    "a cat" 2>&1) && echo "$out" | grep -q 'imagebind-publish-stats, sent=(guint64)4, failed=(guint64)0, dropped=(guint64)0, rejected=(guint64)0, queued=(guint64)0, eos=(boolean)true'; then
  echo "ok 1 - publish.sh ends and reports 4 records sent at EOS"
else
  echo "not ok 1 - publish.sh failed or reported other counts"
  echo "$out" | tail -20 | sed 's/^/# /'
  exit 1
fi
if check=$(python3 - "$tmp/out.jsonl" <<'PY'
import json, math, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 4, len(lines)
recs = [json.loads(l) for l in lines]
assert [r["type"] for r in recs] == ["embedding", "match"] * 2, [r["type"] for r in recs]
assert [r["pts"] for r in recs] == [0, 0, 10**9, 10**9], [r["pts"] for r in recs]
for e in recs[0::2]:
    assert len(e["vector"]) == e["dim"] > 0
    assert abs(math.sqrt(sum(v * v for v in e["vector"])) - 1) < 1e-6
    assert e["modality"] == "vision" and e["source"] == "videotestsrc"
for m in recs[1::2]:
    assert sorted(m["labels"]) == ["a cat", "a dog"], m["labels"]
    assert abs(sum(m["probabilities"]) - 1) < 1e-6
print("dim", recs[0]["dim"])
PY
); then
  echo "ok 2 - the JSON lines: $check, embedding and match at 0 s and 1 s"
else
  echo "not ok 2 - unexpected JSON lines"
  sed 's/^/# /' "$tmp/out.jsonl" | cut -c1-200
  exit 1
fi

# ---- MQTT, on a broker of our own ----
if [ -n "${IMAGEBIND_PUBLISH_NO_MQTT:-}" ]; then
  echo "ok 3 # SKIP imagebindpublish was built without libmosquitto (-Dmqtt)"
  echo "ok 4 # SKIP imagebindpublish was built without libmosquitto (-Dmqtt)"
  exit 0
fi
broker=$(command -v mosquitto || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; } || true)
if [ -z "$broker" ] || ! command -v mosquitto_sub >/dev/null; then
  echo "ok 3 # SKIP mosquitto or mosquitto_sub not installed (apt-get install mosquitto mosquitto-clients)"
  echo "ok 4 # SKIP mosquitto or mosquitto_sub not installed"
  exit 0
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\n' "$port" "$(id -un)" > "$tmp/mosquitto.conf"
"$broker" -c "$tmp/mosquitto.conf" > "$tmp/broker.log" 2>&1 &
broker_pid=$!
trap 'kill $broker_pid 2>/dev/null; wait $broker_pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
  python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
    "$port" 2>/dev/null && break
  sleep 0.1
done

# Subscribes (QoS 1) to topic $1 and to $1/probe, printing "topic payload" lines into $2;
# returns once subscribed: a probe has come back.
subscribe () {
  mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -v -t "$1" -t "$1/probe" > "$2" 2>&1 &
  sub_pids="${sub_pids:-} $!"
  for _ in $(seq 100); do
    mosquitto_pub -h 127.0.0.1 -p "$port" -t "$1/probe" -m probe 2>/dev/null || true
    sleep 0.1
    grep -q "^$1/probe " "$2" && return 0
  done
  return 1
}

# The payloads received on topic $1 (in file $2), once there are $3 (10 s at most).
received () {
  for _ in $(seq 100); do
    [ "$(grep -c "^$1 " "$2")" -ge "$3" ] && break
    sleep 0.1
  done
  sleep 0.2
  grep "^$1 " "$2" | cut -d' ' -f2-
}
trap 'kill $sub_pids $broker_pid 2>/dev/null; wait $broker_pid 2>/dev/null; rm -rf "$tmp"' EXIT

# publish.sh to mqtt://: the same 4 records as to the file, one message each
subscribe imagebind/pipeline "$tmp/sub3.txt" || { echo "not ok 3 - cannot subscribe"; exit 1; }
if out=$(NUM_BUFFERS=30 timeout 120 "$root/pipelines/publish.sh" \
    "mqtt://127.0.0.1:$port/imagebind/pipeline" "a dog" "a cat" 2>&1) \
    && echo "$out" | grep -q 'imagebind-publish-stats, sent=(guint64)4, failed=(guint64)0, dropped=(guint64)0, rejected=(guint64)0, queued=(guint64)0, eos=(boolean)true' \
    && received imagebind/pipeline "$tmp/sub3.txt" 4 > "$tmp/mqtt3.jsonl" \
    && check=$(python3 - "$tmp/mqtt3.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert [(r["type"], r["pts"]) for r in recs] == [("embedding", 0), ("match", 0),
    ("embedding", 10**9), ("match", 10**9)], [(r["type"], r["pts"]) for r in recs]
assert all(len(r["vector"]) == r["dim"] for r in recs[0::2])
print(len(recs), "messages")
PY
); then
  echo "ok 3 - publish.sh to mqtt://: $check, embedding and match at 0 s and 1 s"
else
  echo "not ok 3 - publish.sh to mqtt:// failed or the messages differ"
  echo "$out" | tail -20 | sed 's/^/# /'
  cut -c1-200 "$tmp/sub3.txt" | sed 's/^/# /'
  exit 1
fi

# The documentation's MQTT launch line, as gst-inspect-1.0 would show it, on our port (the
# test model by $IMAGEBIND_MODEL, the line names none)
line=$(grep -o 'gst-launch-1.0 .*location=mqtt://127.0.0.1:1883/.*fakesink' \
  "$root/plugin/gstimagebindpublish.c" | head -n 1)
line=${line//127.0.0.1:1883/127.0.0.1:$port}
topic=$(echo "$line" | sed 's|.*mqtt://127.0.0.1:[0-9]*/\([^ ]*\).*|\1|')
subscribe "$topic" "$tmp/sub4.txt" || { echo "not ok 4 - cannot subscribe"; exit 1; }
if [ -n "$line" ] && out=$(IMAGEBIND_MODEL="$MODEL" eval "timeout 120 $line" 2>&1) \
    && received "$topic" "$tmp/sub4.txt" 4 > "$tmp/mqtt4.jsonl" \
    && check=$(python3 - "$tmp/mqtt4.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()]
assert [(r["type"], r["pts"]) for r in recs] == [("embedding", i * 5 * 10**8) for i in range(4)], recs
assert all("vector" not in r for r in recs)
print(len(recs), "embedding records without vectors")
PY
); then
  echo "ok 4 - the documented MQTT launch line: $check"
else
  echo "not ok 4 - the documented MQTT launch line failed or sent other messages"
  echo "line: $line" | sed 's/^/# /'
  echo "$out" | tail -20 | sed 's/^/# /'
  cut -c1-200 "$tmp/sub4.txt" | sed 's/^/# /'
  exit 1
fi
