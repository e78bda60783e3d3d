#!/bin/sh
# Starts the dispatcher. On a container platform that hands secrets over as environment
# variables (ECS `Secrets`), it first writes the dispatcher's configuration file from them:
#
#   PUSHGATE_REDIS_SECRET      the Redis secret: a URL, or JSON {"url": "..."}
#   PUSHGATE_DISPATCHER_FILES  JSON object of files: "dispatcher.toml" (the [dispatcher]
#                              section with its apps) and the credential files the apps
#                              name under $PUSHGATE_RUN_DIR/files/
#   PUSHGATE_QUEUE_PREFIX, PUSHGATE_QUEUE_SHARDS   the [queue] section (as ingest's)
#
# Without PUSHGATE_REDIS_SECRET it runs `dispatcher` on the file given by --config or
# PUSHGATE_DISPATCHER_CONFIG, unchanged.
set -eu

fail() {
    echo "docker-entrypoint: $*" >&2
    exit 64
}

run_dir=${PUSHGATE_RUN_DIR:-/run/pushgate}

if [ -n "${PUSHGATE_REDIS_SECRET:-}" ]; then
    umask 077
    mkdir -p "$run_dir/files"

    files=${PUSHGATE_DISPATCHER_FILES:-"{}"}
    printf '%s' "$files" | jq -e '
        type == "object"
        and all(.[]; type == "string")
        and all(keys[]; test("^[A-Za-z0-9_][A-Za-z0-9._-]*$"))' >/dev/null 2>&1 ||
        fail "PUSHGATE_DISPATCHER_FILES must be a JSON object of file name (letters, digits, . _ -) to text"
    for name in $(printf '%s' "$files" | jq -r 'keys[]'); do
        printf '%s' "$files" | jq -j --arg name "$name" '.[$name]' >"$run_dir/files/$name"
    done

    case $PUSHGATE_REDIS_SECRET in
    "{"*)
        redis_url=$(printf '%s' "$PUSHGATE_REDIS_SECRET" |
            jq -r 'if type == "object" and (.url | type) == "string" then .url else empty end' 2>/dev/null) ||
            redis_url=""
        ;;
    *) redis_url=$PUSHGATE_REDIS_SECRET ;;
    esac
    [ -n "$redis_url" ] ||
        fail "PUSHGATE_REDIS_SECRET is neither a Redis URL nor JSON with a string field \"url\""

    shards=${PUSHGATE_QUEUE_SHARDS:-1}
    case $shards in
    "" | *[!0-9]*) fail "PUSHGATE_QUEUE_SHARDS must be a whole number: $shards" ;;
    esac

    config="$run_dir/dispatcher.toml"
    {
        # jq writes JSON strings, which are valid TOML basic strings.
        printf 'redis_url = %s\n\n[queue]\n' "$(jq -n --arg value "$redis_url" '$value')"
        printf 'prefix = %s\n' "$(jq -n --arg value "${PUSHGATE_QUEUE_PREFIX:-pushgate}" '$value')"
        printf 'shards = %s\n\n' "$shards"
        if [ -f "$run_dir/files/dispatcher.toml" ]; then
            cat "$run_dir/files/dispatcher.toml"
        fi
    } >"$config"

    unset PUSHGATE_REDIS_SECRET PUSHGATE_DISPATCHER_FILES redis_url files
    export PUSHGATE_DISPATCHER_CONFIG="$config"
fi

exec dispatcher "$@"
