#!/usr/bin/env bash
# Capture the load collectors' outputs on this machine under real, injected load.
# Run as root from the repository root: bash tests/data/outputs/load/capture.sh
# Needs stress-ng (not in .ci/run: the captures are kept, the tests only read them).
set -euo pipefail
out=tests/data/outputs/load
collect() {  # collect SCENARIO: the commands runbook's catalog runs, one file each
  local d="$out/$1"; mkdir -p "$d"
  { uptime; getconf _NPROCESSORS_ONLN; } >"$d/uptime.txt"
  top -b -n 1 -c -w 512 | head -n 40 >"$d/top.txt"   # the summary area and the top rows
  free -m >"$d/free.txt"
  python -c 'from runbook.transport.local_metrics import snapshot; print(snapshot(), end="")' >"$d/system.txt"
  local samplers=()
  vmstat 1 5 >"$d/vmstat.txt" & samplers+=($!)
  iostat -xz 1 5 >"$d/iostat.txt" & samplers+=($!)
  sar -u 1 3 >"$d/sar-u.txt" & samplers+=($!)
  sar -q 1 3 >"$d/sar-q.txt" & samplers+=($!)
  sar -r 1 3 >"$d/sar-r.txt" & samplers+=($!)
  sar -n DEV,EDEV 1 5 >"$d/sar-net.txt" & samplers+=($!)
  sar -n TCP,ETCP 1 5 >"$d/sar-tcp.txt" & samplers+=($!)
  wait "${samplers[@]}"
  netstat -taopen >"$d/netstat-all.txt"
  df -hP -x squashfs | grep -v model_tools >"$d/df.txt"
}
# cpu: four CPU hogs on two CPUs for long enough that the 1-minute load follows
stress-ng --cpu 4 --timeout 100s --quiet & pid=$!
sleep 75; collect cpu; wait $pid
sleep 120  # let the load averages settle between scenarios
# memory: two processes keep 10800 MiB each resident on a 24 GiB machine with no
# swap (stress-ng --vm keeps its total under the commit limit, 12 GiB here)
hog='import sys, time; x = b"\x01" * (10800 * 2**20); open(sys.argv[1], "w").close(); time.sleep(60)'
rm -f /tmp/hog.1 /tmp/hog.2
python3 -c "$hog" /tmp/hog.1 & a=$!; python3 -c "$hog" /tmp/hog.2 & b=$!
while [ ! -e /tmp/hog.1 ] || [ ! -e /tmp/hog.2 ]; do sleep 1; done
sleep 5; collect memory; kill $a $b
sleep 120
# disk: four writers with fsync on the root filesystem's disk
stress-ng --hdd 4 --hdd-bytes 512M --temp-path /var/tmp --timeout 40s --quiet & pid=$!
sleep 15; collect disk; wait $pid
sleep 120
# close-wait: a server that accepts and never closes; 150 clients connect and hang up
python3 - <<'PY' & pid=$!
import socket, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 8089)); srv.listen(512)
kept = []
for _ in range(150):
    c = socket.create_connection(("127.0.0.1", 8089)); kept.append(srv.accept()[0]); c.close()
time.sleep(60)
PY
sleep 8; collect close-wait; kill $pid
