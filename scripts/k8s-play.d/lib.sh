# Shared by scripts/k8s-play and scripts/k8s-rehearsal (sourced, not run).
#
# Every pod, secret and volume made here is recorded in $WORK/made.* and removed by play_teardown,
# which the callers run from an EXIT trap: a failed run leaves nothing behind. Every wait is
# bounded and says what it waited for when it gives up.

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }
now() { date +%s; }
elapsed() { echo "$(( $(now) - STARTED )) s"; }

PORT_BASE=${SLUICE_PLAY_PORT_BASE:-27400}
IMAGE=localhost/sluice:dev
PG_IMAGE=localhost/sluice-postgres:15
REWRITE="python3 $ROOT/scripts/k8s-play.d/rewrite.py"

play_setup() {
    STARTED=$(now)
    [ "$(id -u)" -eq 0 ] || die "run as root (podman with runc as root here; see scripts/podman-setup)"
    "$ROOT"/scripts/podman-setup
    WORK=$(mktemp -d /var/tmp/sluice-play.XXXXXX)
    RUN_ID=$(basename "$WORK")
    : >"$WORK/made.pods"; : >"$WORK/made.secrets"; : >"$WORK/made.volumes"
    trap play_teardown EXIT
    trap 'exit 130' INT TERM
    for p in $(seq "$PORT_BASE" $((PORT_BASE + 40))) $(seq $((PORT_BASE + 100)) $((PORT_BASE + 120))); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            die "port $p is in use (the pods use the host network from $PORT_BASE); set SLUICE_PLAY_PORT_BASE"
        fi
    done
    # Images: the Sluice image (scripts/build-image) and the PostgreSQL one, built when missing.
    if [ "${SLUICE_PLAY_REBUILD_IMAGE:-0}" = 1 ] || ! podman image exists "$IMAGE"; then
        "$ROOT"/scripts/build-image >/dev/null
    fi
    podman image exists "$PG_IMAGE" || "$ROOT"/scripts/k8s-play.d/build-postgres-image "$PG_IMAGE"
    # Render the dev overlay.
    KUBECTL=${KUBECTL:-$(command -v kubectl || true)}
    if [ -z "$KUBECTL" ] || ! "$KUBECTL" kustomize "$ROOT/k8s/overlays/dev" >"$WORK/dev.yaml" 2>"$WORK/render.err"; then
        # scripts/validate-k8s installs a kubectl that can render these kustomizations.
        KUBECTL=${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/sluice-validate-k8s/venv/bin/kubectl
        [ -x "$KUBECTL" ] || { say "no kubectl 1.21+: running scripts/validate-k8s once to install one"; "$ROOT"/scripts/validate-k8s >/dev/null 2>&1 || true; }
        "$KUBECTL" kustomize "$ROOT/k8s/overlays/dev" >"$WORK/dev.yaml" || die "kubectl kustomize k8s/overlays/dev failed"
    fi
    say "rendered k8s/overlays/dev ($(grep -c '^kind:' "$WORK/dev.yaml") documents) into $WORK"
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
}

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
    code=$(timeout "${1:-600}" podman wait "$c") || die "the verify pod did not finish within ${1:-600} s"
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
