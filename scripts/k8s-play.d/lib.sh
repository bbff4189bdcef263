# Shared by scripts/k8s-play and scripts/k8s-rehearsal (sourced, not run).
#
# Every pod, secret and volume made here is recorded in $WORK/made.* and removed by play_teardown,
# which the callers run from an EXIT trap: a failed run leaves nothing behind. Every wait is
# bounded and says what it waited for when it gives up.

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
# podman without the lock's fd 9: `podman kube play` and `podman start` leave conmon running as
# the containers' monitor, and a conmon that inherited fd 9 held the lock after this script was
# SIGKILLed (seen: the next run waited for the leftover pods' conmon processes).
podman() { command podman "$@" 9>&-; }
die() { say "FAIL: $*"; exit 1; }
now() { date +%s; }
elapsed() { echo "$(( $(now) - STARTED )) s"; }

# The Sluice image the pods run: the manifests' sluice:dev (scripts/build-image), or another one
# (scripts/test uses localhost/sluice:test, its debug build; printed as a rewrite).
IMAGE=${SLUICE_PLAY_IMAGE:-localhost/sluice:dev}
PG_IMAGE=localhost/sluice-postgres:15
# The kustomization played: the dev overlay, or the game-day workload (chaos/k8s/workload).
OVERLAY=${SLUICE_PLAY_OVERLAY:-k8s/overlays/dev}
REWRITE="python3 $ROOT/scripts/k8s-play.d/rewrite.py"
# One run at a time on a machine: the pods, the claim's volume and the host ports have fixed
# names. Held (fd 9) until the script exits.
LOCK=/run/lock/sluice-k8s-play.lock
# The names this script gives what it makes (rewrite.py): anything of these names found after the
# lock is taken was left by a run that could not tear down (SIGKILL, a crash of the machine).
LEFTOVER_PODS='^(sluice-postgres-0|sluice-coordinator-[0-9]+|sluice-worker-[0-9]+|sluice-verify)$'
LEFTOVER_VOLUMES='^(data-sluice-postgres-0|sluice-(config|job|inputs?)(-[a-z0-9]+)?)$'

port_range_free() {
    local p
    for p in $(seq "$1" $(($1 + 40))) $(seq $(($1 + 100)) $(($1 + 120))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 1; fi
    done
}

# PORT_BASE: $SLUICE_PLAY_PORT_BASE, which must be free, or the first of 27400, 28400, …, 31400
# whose ports are all free (below the kernel's ephemeral range, 32768+, where the test
# PostgreSQL server of scripts/test and clients' own ports live).
pick_ports() {
    local b
    if [ -n "${SLUICE_PLAY_PORT_BASE:-}" ]; then
        port_range_free "$SLUICE_PLAY_PORT_BASE" || die "a port in $SLUICE_PLAY_PORT_BASE..+120 is in use (SLUICE_PLAY_PORT_BASE)"
        PORT_BASE=$SLUICE_PLAY_PORT_BASE
        return
    fi
    for b in 27400 28400 29400 30400 31400; do
        if port_range_free "$b"; then PORT_BASE=$b; return; fi
        say "a port in $b..$((b + 120)) is in use; trying the next range"
    done
    die "no free port range for the pods (27400..31520); set SLUICE_PLAY_PORT_BASE"
}

remove_leftovers() {
    local p v
    for p in $(podman pod ls --format '{{.Name}}' | grep -E "$LEFTOVER_PODS" || true); do
        say "removing pod $p, left by an earlier run that did not tear down"
        podman pod rm -f -t 0 "$p" >/dev/null 2>&1 || true
    done
    for v in $(podman volume ls --format '{{.Name}}' | grep -E "$LEFTOVER_VOLUMES" || true); do
        say "removing volume $v, left by an earlier run (reused, a stale database would fail the verify)"
        podman volume rm -f "$v" >/dev/null 2>&1 || true
    done
    gameday_net_cleanup 2>/dev/null || true
    # Their work directories (certificates, projected secrets, emptyDirs); ours is $WORK.
    for v in /var/tmp/sluice-play.*; do
        [ -d "$v" ] && [ "$v" != "$WORK" ] || continue
        say "removing $v, left by an earlier run"
        rm -rf "$v"
    done
}
gameday_net_cleanup() { :; }  # scripts/k8s-gameday redefines it (its iptables chain)

play_setup() {
    STARTED=$(now)
    [ "$(id -u)" -eq 0 ] || die "run as root (podman with runc as root here; see scripts/podman-setup)"
    "$ROOT"/scripts/podman-setup
    exec 9>"$LOCK"
    if ! flock -n 9; then
        say "another k8s-play, k8s-rehearsal or k8s-gameday runs on this machine; waiting for it (at most 20 min)"
        flock -w 1200 9 || die "still locked after 20 min ($LOCK)"
    fi
    WORK=$(mktemp -d /var/tmp/sluice-play.XXXXXX)
    RUN_ID=$(basename "$WORK")
    : >"$WORK/made.pods"; : >"$WORK/made.secrets"; : >"$WORK/made.volumes"
    trap play_teardown EXIT
    trap 'exit 130' INT TERM
    remove_leftovers
    pick_ports
    # Images: the Sluice image (scripts/build-image) and the PostgreSQL one, built when missing.
    if [ "$IMAGE" = localhost/sluice:dev ]; then
        if [ "${SLUICE_PLAY_REBUILD_IMAGE:-0}" = 1 ] || ! podman image exists "$IMAGE"; then
            "$ROOT"/scripts/build-image >/dev/null 9>&-
        fi
    else
        podman image exists "$IMAGE" || die "no image $IMAGE (SLUICE_PLAY_IMAGE; scripts/build-image --debug builds localhost/sluice:test)"
    fi
    podman image exists "$PG_IMAGE" || "$ROOT"/scripts/k8s-play.d/build-postgres-image "$PG_IMAGE" 9>&-
    # Render the overlay.
    KUBECTL=${KUBECTL:-$(command -v kubectl || true)}
    if [ -z "$KUBECTL" ] || ! "$KUBECTL" kustomize "$ROOT/$OVERLAY" >"$WORK/dev.yaml" 2>"$WORK/render.err"; then
        # scripts/validate-k8s installs a kubectl that can render these kustomizations.
        KUBECTL=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/sluice-validate-k8s/venv/bin/kubectl
        [ -x "$KUBECTL" ] || { say "no kubectl 1.21+: running scripts/validate-k8s once to install one"; "$ROOT"/scripts/validate-k8s >/dev/null 2>&1 || true; }
        "$KUBECTL" kustomize "$ROOT/$OVERLAY" >"$WORK/dev.yaml" || die "kubectl kustomize $OVERLAY failed"
    fi
    say "rendered $OVERLAY ($(grep -c '^kind:' "$WORK/dev.yaml") documents) into $WORK; pods on 127.0.0.1 ports $PORT_BASE..$((PORT_BASE + 120))"
    if [ "$IMAGE" != localhost/sluice:dev ]; then
        sed -i "s#^\( *image: \)sluice:dev\$#\1$IMAGE#" "$WORK/dev.yaml"
        echo "rewrite: image sluice:dev -> $IMAGE (SLUICE_PLAY_IMAGE)"
    fi
    if [ -n "${SLUICE_PLAY_INPUT:-}" ]; then
        old=$(grep -o 'input: gen:[^ ]*' "$WORK/dev.yaml" | head -1)
        sed -i "s#^  input: gen:.*#  input: ${SLUICE_PLAY_INPUT}#" "$WORK/dev.yaml"
        echo "rewrite: ConfigMap sluice-config: ${old} -> input: ${SLUICE_PLAY_INPUT} (SLUICE_PLAY_INPUT)"
    fi
    if [ -n "${SLUICE_PLAY_WORKER_RATE:-}" ]; then
        python3 - "$WORK/dev.yaml" "$SLUICE_PLAY_WORKER_RATE" <<'PY'
import sys, yaml
path, rate = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
for d in docs:
    if d["kind"] == "Deployment" and d["metadata"]["name"] == "sluice-worker":
        d["spec"]["template"]["spec"]["containers"][0]["args"].append(f"--rate={rate}")
yaml.safe_dump_all(docs, open(path, "w"), sort_keys=False)
PY
        echo "rewrite: Deployment sluice-worker: args + --rate=$SLUICE_PLAY_WORKER_RATE (as chaos/k8s/workload does, so that the run lasts through the rehearsal)"
    fi
    $REWRITE prepare "$WORK/dev.yaml" "$WORK" "$PORT_BASE"
    # shellcheck disable=SC1091
    . "$WORK/ports.env"
    chmod 0755 "$WORK" "$WORK/operator"
    chmod 0644 "$WORK"/operator/*
    PARTITIONS=$(grep -o 'partitions=[0-9]*' "$WORK/dev.yaml" | head -1 | cut -d= -f2)
    NEXT_WORKER=0
}

# play FILE: podman kube play on the host network; records what it made.
play() {
    local file=$1 out
    # The ConfigMaps in the same file: podman 4.3 finds a configMap volume's ConfigMap only there
    # (with --configmap it says "no such ConfigMap"); it keeps the volume it makes for one.
    { cat "$WORK/configmaps.yaml"; echo ---; cat "$file"; } >"$file.played"
    out=$(podman kube play --network host "$file.played" 2>&1) || { echo "$out" >&2; die "podman kube play $(basename "$file") failed"; }
    python3 - "$file.played" "$WORK" <<'PY'
import sys, yaml
path, work = sys.argv[1:]
for d in yaml.safe_load_all(open(path)):
    if not d:
        continue
    kind, name = d["kind"], d["metadata"]["name"]
    target = {"Pod": "pods", "Secret": "secrets", "PersistentVolumeClaim": "volumes", "ConfigMap": "volumes"}.get(kind)
    if target:
        with open(f"{work}/made.{target}", "a") as f:
            f.write(name + "\n")
PY
}

# remove_pod NAME [TIMEOUT]: stop as Kubernetes deletes a pod (SIGTERM, then SIGKILL after the grace period).
remove_pod() {
    local name=$1 grace=${2:-30}
    podman pod stop -t "$grace" "$name" >/dev/null 2>&1 || true
    podman pod rm -f "$name" >/dev/null 2>&1 || true
    podman secret rm "$name-tls" >/dev/null 2>&1 || true
    clear_empty_dirs "$name"
}

# A pod's emptyDir directories (rewrite.py) emptied: a pod made again under the same name starts
# with empty ones, as a new pod does in Kubernetes.
clear_empty_dirs() { find "$WORK/emptydir/$1" -mindepth 2 -delete 2>/dev/null || true; }

play_teardown() {
    local rc=$?
    trap - EXIT
    set +e  # tear down everything, whatever fails
    [ -n "${WORK:-}" ] || exit $rc
    if [ "${SLUICE_PLAY_KEEP:-0}" = 1 ]; then
        say "SLUICE_PLAY_KEEP=1: leaving the pods up and $WORK"
        exit $rc
    fi
    if [ $rc -ne 0 ]; then
        say "failed after $(elapsed): the last log lines of every pod"
        for p in $(sort -u "$WORK/made.pods"); do
            for c in $(podman pod inspect "$p" --format '{{range .Containers}}{{.Name}} {{end}}' 2>/dev/null); do
                case "$c" in *-infra) continue ;; esac
                echo "--- $c" >&2
                podman logs --tail 15 "$c" 2>&1 | cut -c1-300 >&2 || true
            done
        done
    fi
    say "teardown: pods, secrets, volumes made by this run"
    for p in $(sort -u "$WORK/made.pods"); do podman pod rm -f -t 0 "$p" >/dev/null 2>&1 || true; done
    for s in $(sort -u "$WORK/made.secrets"); do podman secret rm "$s" >/dev/null 2>&1 || true; done
    for v in $(sort -u "$WORK/made.volumes"); do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
    left=$(for p in $(sort -u "$WORK/made.pods"); do if podman pod exists "$p" 2>/dev/null; then echo "$p"; fi; done)
    [ -z "$left" ] || say "WARNING: pods still there after teardown: $left"
    rm -rf "$WORK"
    exit $rc
}

# wait_for SECONDS WHAT COMMAND...: runs COMMAND every second until it succeeds.
wait_for() {
    local limit=$1 what=$2 t0
    shift 2
    t0=$(now)
    until "$@" >/dev/null 2>&1; do
        [ $(( $(now) - t0 )) -lt "$limit" ] || die "waited ${limit} s for $what"
        sleep 1
    done
    say "$what ($(( $(now) - t0 )) s)"
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true; }
http_is() { [ "$(http_code "$1")" = "$2" ]; }
pg_ready() { podman exec sluice-postgres-0-postgres pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -U sluice -d sluice; }
container_running() { [ "$(podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }

start_postgres() {
    play "$WORK/postgres.yaml"
    wait_for 120 "PostgreSQL ready (pg_isready, the manifest's startup and readiness probe)" pg_ready
}

start_coordinators() {
    local i
    for i in 0 1; do play "$WORK/sluice-coordinator-$i.yaml"; done
    set -- $COORD_METRICS
    wait_for 60 "both coordinators live (/healthz 200, the startup and liveness probes)" \
        bash -c "[ \"\$(curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:$1/healthz)\" = 200 ] && [ \"\$(curl -s -o /dev/null -m 2 -w '%{http_code}' http://127.0.0.1:$2/healthz)\" = 200 ]"
    wait_for 60 "one coordinator leads (/readyz 200 on exactly one)" one_leader
    say "leader: $(leader)"
}

# The index (0 or 1) of the coordinator whose /readyz answers 200, when exactly one does.
leader() {
    local i=0 found=() m
    for m in $COORD_METRICS; do
        [ "$(http_code "http://127.0.0.1:$m/readyz")" = 200 ] && found+=("$i")
        i=$((i + 1))
    done
    [ ${#found[@]} -eq 1 ] && echo "sluice-coordinator-${found[0]}"
}
one_leader() { [ -n "$(leader)" ]; }
leader_is() { [ "$(leader)" = "$1" ]; }

# add_worker: plays the next worker pod; waits for its /readyz (the readiness probe). Prints its name.
add_worker() {
    local name="sluice-worker-$NEXT_WORKER" index=$NEXT_WORKER
    NEXT_WORKER=$((NEXT_WORKER + 1))
    if [ "$index" -eq 0 ]; then  # the rewrites once, for the first worker
        $REWRITE worker "$WORK/dev.yaml" "$WORK" "$PORT_BASE" "$name" "$index"
    else
        $REWRITE worker "$WORK/dev.yaml" "$WORK" "$PORT_BASE" "$name" "$index" >>"$WORK/rewrites.log"
    fi
    play "$WORK/$name.yaml"
    eval "PORT_$index=$((PORT_BASE + 100 + index))"
    wait_for 60 "$name ready (/readyz 200 on :$((PORT_BASE + 100 + index)))" http_is "http://127.0.0.1:$((PORT_BASE + 100 + index))/readyz" 200
    WORKERS+=("$name")
}

status() {
    podman run --rm --network host --read-only --user 10001 -v "$WORK/operator:/op:ro" "$IMAGE" \
        status --coordinator "127.0.0.1:${COORD_GRPC// /,127.0.0.1:}" --cert /op/tls.crt --key /op/tls.key --ca /op/ca.crt
}

finished_count() { status 2>/dev/null | awk '$NF == "finished"' | wc -l; }
all_finished() { [ "$(finished_count)" -eq "$PARTITIONS" ]; }

# workers_holding: the worker ids in the status that hold at least one partition.
workers_holding() { status 2>/dev/null | awk 'p && NF >= 2 && $2 ~ /^[0-9,]+$/ {print $1} /^worker /{p=1}' | sort | tr '\n' ' '; }

wait_finished() {
    local limit=$1 t0
    t0=$(now)
    until all_finished; do
        [ $(( $(now) - t0 )) -lt "$limit" ] || { status >&2 || true; die "waited $limit s for every partition to finish"; }
        sleep 5
    done
    say "every partition finished ($(( $(now) - t0 )) s)"
}

run_verify() {
    $REWRITE verify "$WORK/dev.yaml" "$WORK" "$PORT_BASE" "$ROOT/chaos/k8s/workload/verify-job.yaml"
    play "$WORK/sluice-verify.yaml"
    local c=sluice-verify-verify code
    code=$(timeout "${1:-600}" podman wait "$c" 9>&-) || die "the verify pod did not finish within ${1:-600} s"
    local logs
    logs=$(podman logs "$c" 2>&1)
    echo "$logs" | tail -20
    [ "$code" = 0 ] || die "sluice verify exited $code"
    grep -q '^PASS' <<<"$logs" || die "sluice verify printed no PASS"
    say "verify: PASS (exit 0)"
}

# Partitions that are neither owned nor finished (status: owner "-").
unowned_count() { status 2>/dev/null | awk 'NR==1{next} /^$/{exit} $2=="-" && $NF!="finished"{n++} END{print n+0}'; }
all_owned() { local s; s=$(status 2>/dev/null) || return 1; [ "$(echo "$s" | awk 'NR==1{next} /^$/{exit} $2=="-" && $NF!="finished"{n++} END{print n+0}')" = 0 ]; }
# holds WORKER: the worker holds at least one partition, or every partition has finished.
holds() { local s; s=$(status 2>/dev/null) || return 1; echo "$s" | awk -v w="$1" 'NR==1{next} /^$/{exit} $2==w{f=1} END{exit !f}' || all_finished; }
# Only the given workers own partitions.
owned_only_by() { local s; s=$(status 2>/dev/null) || return 1; echo "$s" | awk -v ws=" $* " 'NR==1{next} /^$/{exit} $2!="-" && index(ws, " " $2 " ")==0 {bad=1} END{exit bad}'; }
