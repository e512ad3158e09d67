#!/bin/sh
# The team's existing smoke script, kept as one check of the suite:
# slipway passes the URL as $1 (and as $SLIPWAY_URL).
set -eu
url="${1:-$SLIPWAY_URL}"
wget -q -O /dev/null "$url/health"
