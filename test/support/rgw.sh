#!/usr/bin/env bash
# A throwaway single-host Ceph RGW (S3) for tests, living entirely inside one directory.
#
#   eval "$(bash test/support/rgw.sh start DIR [PORT])"   # prints the FEDSYNC_TEST_RGW_* exports
#   bash test/support/rgw.sh stop DIR                     # idempotent
#
# One ceph-mon, one ceph-osd on memstore (RAM), one radosgw (beast), no cephx, no ceph-mgr.
# Every file a daemon writes (config, data, pid files, admin sockets, logs) is under DIR, so
# several instances can run side by side and nothing touches /etc/ceph or /var/lib/ceph.
# stdout carries only the export lines (also written to DIR/env); progress goes to stderr.
# See /work/shared/S3-SERVERS.md for why each setting below is there.
set -euo pipefail

ACCESS_KEY=fedsynctestaccesskey
SECRET_KEY=fedsynctestsecretkey0000000000000000000
START_TIMEOUT=${RGW_START_TIMEOUT:-60} # seconds; a healthy start takes under one
STOP_TIMEOUT=30                        # seconds per daemon before SIGKILL; the OSD writes
                                       # its memstore out to DIR as it stops

log() { echo "rgw.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  echo "usage: rgw.sh start DIR [PORT] | rgw.sh stop DIR" >&2
  exit 2
}

# A TCP port on 127.0.0.1 that nothing listens on, between the OSD's ports (6800-7300) and
# the kernel's ephemeral range (32768+, where outgoing connections and port-0 listeners land).
# Probing with bash's /dev/tcp keeps the script free of curl/python/ss; losing a race for the
# port to another process is caught later: the daemon fails to start and its log says why.
free_port() {
  local port tries
  for ((tries = 0; tries < 200; tries++)); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# Succeeds once an anonymous GET / gets 200 (RGW lists no buckets for an anonymous caller).
# Plain bash, so a fresh machine needs no HTTP client.
s3_answers() {
  local status
  exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
  printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$1" >&3
  IFS= read -r -t 5 status <&3 || status=
  exec 3<&- 3>&-
  [[ $status == HTTP/1.1\ 200* ]]
}

show_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [[ -e $f ]] || continue
    echo "----- tail of $f -----" >&2
    tail -n 40 "$f" >&2
  done
}

write_conf() {
  local fsid=$1 mon_port=$2 rgw_port=$3
  cat >"$CONF" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $DIR/run
pid file = $DIR/run/\$name.pid
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
rgw data = $DIR/rgw
keyring = $DIR/keyring
# A test cluster has one copy of everything on one host.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
# radosgw creates about eight pools at first start; the default of 32 PGs each would exceed
# the per-OSD PG limit (250) and slow peering.
osd pool default pg num = 8
osd pool default pgp num = 8
# radosgw makes several map changes at start; default paxos pacing turns ~1 s into ~12 s.
paxos propose interval = 0.01
paxos min wait = 0.01

[mon]
mon data = $DIR/mon/\$name

[osd]
osd data = $DIR/osd/\$name
osd objectstore = memstore
# memstore keeps objects in RAM; this is only the capacity it reports, so the OSD is not
# "full" (writes blocked) after a benchmark writes a few GiB.
memstore device bytes = $((8 * 1024 * 1024 * 1024))
# memstore loses everything at restart unless the OSD shuts down cleanly.
osd fast shutdown = false
# Short PG logs: otherwise OSD memory grows with every write of a long test run.
osd min pg log entries = 100
osd max pg log entries = 500
osd pg log dups tracked = 500

[client]
# Without cephx, clients must not insist on a secure monitor session, or radosgw hangs at
# start with "get_initial_auth_request returned -13".
ms mon client mode = crc

[client.rgw.a]
# tcp_nodelay: without it small GETs stall ~40 ms on Nagle + delayed ACK.
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
# Deleted multipart tails are reclaimed after minutes, not the default two hours.
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
}

start() {
  local port=${1:-} mon_port fsid osd_uuid osd_id deadline started=$EPOCHREALTIME
  local rgw_pidfile=$DIR/run/client.rgw.a.pid rgw_pid=
  [[ -e $CONF ]] && die "$DIR already holds a cluster; stop it and use a fresh directory"
  [[ -n $port ]] || port=$(free_port)
  mon_port=$(free_port)
  [[ $mon_port != "$port" ]] || mon_port=$(free_port)
  fsid=$(</proc/sys/kernel/random/uuid)
  osd_uuid=$(</proc/sys/kernel/random/uuid)

  mkdir -p "$DIR"/run "$DIR"/log "$DIR"/mon "$DIR"/osd
  write_conf "$fsid" "$mon_port" "$port"
  # From here on a failure may leave daemons behind: show why, then clean up.
  trap 'log "start failed; the daemon logs end with:"; show_logs; stop' EXIT
  # The tools chat on stderr before daemonising ("Falling back to public interface"); keep that
  # with the logs so stderr shows only our progress, or the logs on failure.
  exec 4>>"$DIR/log/startup.log"

  log "starting ceph-mon on 127.0.0.1:$mon_port"
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/monmap" >&4 2>&4
  ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" 2>&4
  ceph-mon -c "$CONF" -i a 2>&4

  log "starting ceph-osd (memstore)"
  osd_id=$(ceph -c "$CONF" --connect-timeout "$START_TIMEOUT" osd new "$osd_uuid" 2>&4)
  mkdir -p "$DIR/osd/osd.$osd_id"
  ceph-osd -c "$CONF" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>&4
  ceph-osd -c "$CONF" -i "$osd_id" 2>&4

  log "starting radosgw on 127.0.0.1:$port"
  radosgw -c "$CONF" -n client.rgw.a 2>&4

  # radosgw-admin talks to RADOS directly, so it can run while radosgw is still initialising.
  timeout "$START_TIMEOUT" radosgw-admin -c "$CONF" user create --uid=fedsync-test \
    --display-name=fedsync-test --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null 2>&4

  deadline=$((SECONDS + START_TIMEOUT))
  until s3_answers "$port" 2>/dev/null; do
    # radosgw exits if it cannot bind its port: no point waiting out the deadline then. It
    # writes its pid file just after it forks, and removes it as it exits.
    [[ -n $rgw_pid ]] || rgw_pid=$(cat "$rgw_pidfile" 2>/dev/null) || rgw_pid=
    [[ -z $rgw_pid ]] || alive "$rgw_pid" || die "radosgw exited during start"
    ((SECONDS < deadline)) || die "S3 did not answer on port $port within ${START_TIMEOUT}s"
    sleep 0.05
  done
  trap - EXIT

  cat >"$DIR/env" <<EOF
export FEDSYNC_TEST_RGW_ENDPOINT=http://127.0.0.1:$port
export FEDSYNC_TEST_RGW_ACCESS_KEY=$ACCESS_KEY
export FEDSYNC_TEST_RGW_SECRET_KEY=$SECRET_KEY
EOF
  log "ready in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }') s"
  cat "$DIR/env"
}

# True while PID is a live process (a zombie awaiting its reaper counts as gone).
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

stop() {
  local pidfile pid waited
  # Reverse start order: radosgw and the OSD still talk to the monitor as they shut down.
  for pidfile in "$DIR"/run/client.rgw.a.pid "$DIR"/run/osd.*.pid "$DIR"/run/mon.a.pid; do
    # A daemon that exits on its own removes its pid file, maybe just now.
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    # A stale pid file may name a process that has since been reused by something else:
    # only signal it if its command line mentions this cluster's config.
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$CONF"; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((waited = 0; waited < STOP_TIMEOUT * 10; waited++)); do
        alive "$pid" || break
        sleep 0.1
      done
      if alive "$pid"; then
        log "$(basename "$pidfile" .pid) (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$pidfile"
  done
}

[[ $# -ge 2 ]] || usage
cmd=$1
DIR=$(realpath -m "$2")
CONF=$DIR/ceph.conf
case $cmd in
  start)
    [[ $# -le 3 ]] || usage
    start "${3:-}"
    ;;
  stop)
    [[ $# -eq 2 ]] || usage
    stop
    ;;
  *) usage ;;
esac
