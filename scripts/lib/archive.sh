# A local S3 Object Lock peer for ./scripts/dev and ./scripts/test (sourced, not run).
#
# moto's server, from PyPI, in a virtualenv the scripts create (.venv-moto/ at
# the checkout root, pinned). It keeps its state in memory: every start is an
# empty S3. Caveats (why the gateway never relies on it to refuse anything):
# it refuses deleting a locked object version, but not shortening a
# retention; multipart uploads lose the lock; it does not verify the
# checksums uploads carry. The gateway ships single PUTs with a checksum and
# never asks to overwrite or delete.
#
# Needs rgw_log and rgw_free_port from scripts/lib/postgres.sh.

RGW_MOTO_VERSION=${RGW_MOTO_VERSION:-5.2.5}
RGW_ARCHIVE_ROOT=${RGW_ARCHIVE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
RGW_MOTO_VENV=${RGW_MOTO_VENV:-$RGW_ARCHIVE_ROOT/.venv-moto}

# Credentials the peer accepts (any work); exported for the AWS SDK and tools.
RGW_ARCHIVE_ACCESS_KEY=rgw-local-access-key
RGW_ARCHIVE_SECRET_KEY=rgw-local-secret-key
RGW_ARCHIVE_REGION=us-east-1

# Create the virtualenv and install moto[server] (once per version).
rgw_archive_ensure_installed() {
    local marker=$RGW_MOTO_VENV/.rgw-moto-$RGW_MOTO_VERSION
    if [ -x "$RGW_MOTO_VENV/bin/moto_server" ] && [ -f "$marker" ]; then
        return 0
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        rgw_log "python3 venv support not found: installing Debian's python3-venv"
        rgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        rgw_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rgw_log "installing moto[server]==$RGW_MOTO_VERSION into $RGW_MOTO_VENV (local S3 Object Lock peer)"
    rm -rf "$RGW_MOTO_VENV"
    python3 -m venv "$RGW_MOTO_VENV"
    "$RGW_MOTO_VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$RGW_MOTO_VERSION" boto3
    touch "$marker"
}

# rgw_archive_start DIR [PORT] — start the peer on 127.0.0.1, log in DIR/moto.log.
# Sets RGW_ARCHIVE_PID, RGW_ARCHIVE_PORT, RGW_ARCHIVE_ENDPOINT.
rgw_archive_start() {
    local dir=$1 port=${2:-}
    [ -n "$port" ] || port=$(rgw_free_port)
    mkdir -p "$dir"
    rgw_archive_ensure_installed
    "$RGW_MOTO_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
    RGW_ARCHIVE_PID=$!
    RGW_ARCHIVE_PORT=$port
    RGW_ARCHIVE_ENDPOINT=http://127.0.0.1:$port
    echo "$RGW_ARCHIVE_PID" >"$dir/moto.pid"
    local _
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$RGW_ARCHIVE_ENDPOINT/moto-api/" 2>/dev/null \
            || curl -sS -o /dev/null "$RGW_ARCHIVE_ENDPOINT/" 2>/dev/null; then
            export RGW_ARCHIVE_PID RGW_ARCHIVE_PORT RGW_ARCHIVE_ENDPOINT
            return 0
        fi
        if ! kill -0 "$RGW_ARCHIVE_PID" 2>/dev/null; then
            echo "the S3 peer exited; see $dir/moto.log" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "the S3 peer did not come up on $RGW_ARCHIVE_ENDPOINT; see $dir/moto.log" >&2
    return 1
}

rgw_archive_stop() {
    if [ -n "${RGW_ARCHIVE_PID:-}" ]; then
        kill "$RGW_ARCHIVE_PID" 2>/dev/null || true
        wait "$RGW_ARCHIVE_PID" 2>/dev/null || true
        RGW_ARCHIVE_PID=
    fi
}

# rgw_archive_create_bucket ENDPOINT BUCKET — an Object Lock bucket (versioned), if absent.
rgw_archive_create_bucket() {
    AWS_ACCESS_KEY_ID=$RGW_ARCHIVE_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_ARCHIVE_SECRET_KEY \
        "$RGW_MOTO_VENV/bin/python" - "$1" "$2" "$RGW_ARCHIVE_REGION" <<'EOF'
import sys
import boto3
endpoint, bucket, region = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
existing = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
if bucket not in existing:
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
mode = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"]
assert mode == "Enabled", f"bucket {bucket}: Object Lock is {mode}"
EOF
}

# The credentials, region and endpoint the gateway, verify-chain and the AWS tools read.
rgw_archive_export_env() {
    export AWS_ACCESS_KEY_ID=$RGW_ARCHIVE_ACCESS_KEY
    export AWS_SECRET_ACCESS_KEY=$RGW_ARCHIVE_SECRET_KEY
    export AWS_REGION=$RGW_ARCHIVE_REGION
    export AWS_ENDPOINT_URL_S3=$RGW_ARCHIVE_ENDPOINT
}

# For ./scripts/dev: start the peer (state under DEV/), create the dev bucket,
# export the gateway's archive settings, and append the PID to PIDS.
rgw_archive_dev_start() {
    local dev=$1
    local port
    port=$(cat "$dev/s3.port" 2>/dev/null || rgw_free_port)
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        port=$(rgw_free_port)
    fi
    rgw_archive_start "$dev/s3" "$port"
    echo "$port" >"$dev/s3.port"
    PIDS+=("$RGW_ARCHIVE_PID")
    # moto keeps nothing across restarts; a bucket named per start keeps the
    # shipper's records of earlier (vanished) buckets from raising alarms.
    local bucket=rgw-dev-archive-$(date +%s)
    rgw_archive_create_bucket "$RGW_ARCHIVE_ENDPOINT" "$bucket"
    rgw_archive_export_env
    export AUDIT_S3_BUCKET=$bucket
    export AUDIT_S3_ENDPOINT_URL=$RGW_ARCHIVE_ENDPOINT
    export AUDIT_S3_FORCE_PATH_STYLE=true
    export AUDIT_S3_REGION=$RGW_ARCHIVE_REGION
    rgw_log "S3 Object Lock peer (moto) on $RGW_ARCHIVE_ENDPOINT, bucket $bucket (in memory; log .dev/s3/moto.log)"
}
