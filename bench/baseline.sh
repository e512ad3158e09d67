#!/usr/bin/env bash
# The seed's deploy pipeline (docs/deployment.md, scripts/deploy-production.sh),
# re-enacted step by step as the baseline slipway is measured against:
#
#   1. tag the images of the running containers :rollback
#   2. docker compose pull
#   3. docker compose up -d (compose recreates each service: stop, then start)
#   4. poll the health endpoints until they answer, for up to 100 s
#   5. run the smoke-test script against the URL
#   6. on success: remove the :rollback tags, `docker image prune`
#      on failure: stop the services, point the deployed tag back at the
#      :rollback images, `docker compose up -d` again, poll health again
#
# Usage: baseline.sh TAG   (exit 0 deployed, 1 rolled back, 3 rollback failed)
# Environment: PROJECT, STACK_DIR, SERVICES ("api web worker"), REPO_PREFIX
# (images are $REPO_PREFIX/<service>), HEALTH_URLS (space separated), SMOKE
# (the smoke script), URL (given to it), POLL (seconds between health polls;
# the seed polled for up to 100 s: 100/POLL tries).
set -u
TAG="$1"
cd "$STACK_DIR"
compose() { docker compose --project-name "$PROJECT" --file docker-compose.yml "$@"; }
export IMAGE_TAG="$TAG"
POLL="${POLL:-5}"
TRIES=$(( 100 / POLL ))

healthy() {
    local i url ok
    for i in $(seq 1 "$TRIES"); do
        ok=1
        for url in $HEALTH_URLS; do
            curl -sf -o /dev/null --max-time 5 "$url" || { ok=0; break; }
        done
        [ "$ok" = 1 ] && return 0
        sleep "$POLL"
    done
    return 1
}

# 1. Tag rollback: the images the running containers use.
for svc in $SERVICES; do
    cid="$(compose ps -q "$svc" | head -n 1)"
    [ -n "$cid" ] || continue
    docker tag "$(docker inspect --format '{{.Image}}' "$cid")" "$REPO_PREFIX/$svc:rollback"
done

# 2–3. Pull and roll out.
compose pull --quiet $SERVICES || exit 2
compose up -d --no-deps $SERVICES || exit 2

# 4–5. Verify, smoke test.
if healthy && "$SMOKE" "$URL"; then
    # 6. Clean up.
    for svc in $SERVICES; do docker rmi "$REPO_PREFIX/$svc:rollback" >/dev/null 2>&1; done
    docker image prune -f >/dev/null
    exit 0
fi

# Rollback: restart the services on the :rollback images, verify health.
compose stop $SERVICES
for svc in $SERVICES; do docker tag "$REPO_PREFIX/$svc:rollback" "$REPO_PREFIX/$svc:$TAG"; done
compose up -d --no-deps $SERVICES
if healthy; then exit 1; fi
exit 3
