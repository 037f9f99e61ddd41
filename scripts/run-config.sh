#!/bin/sh
# run-config.sh OUT - writes the configuration `make run` serves with when
# OPENAI_API_KEY is set: the local model first (mode prefer_edge), and a
# cloud upstream at OPENAI_BASE_URL (default https://api.openai.com/v1)
# with OPENAI_MODEL (default gpt-4o-mini) for what the edge cannot serve
# (overload, a prompt past its context, a failure). The key itself stays
# in the environment: the file names the variable (docs/ROUTING.md).
set -eu
out=$1
base=${OPENAI_BASE_URL:-https://api.openai.com/v1}
model=${OPENAI_MODEL:-gpt-4o-mini}
case "$base" in
  http://*|https://*) ;;
  *) echo "run-config.sh: OPENAI_BASE_URL must start with http:// or https:// (got '$base')" >&2; exit 2;;
esac
# YAML single-quoted scalars: a quote is doubled
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }
cat >"$out" <<YAML
# written by scripts/run-config.sh for make run (OPENAI_API_KEY is set)
upstreams:
  - name: local
    kind: local
  - name: cloud
    kind: openai
    base_url: $(q "$base")
    model: $(q "$model")
    api_key_env: OPENAI_API_KEY
    tier: cloud
routing:
  defaults: {mode: prefer_edge}
YAML
echo "  cloud:      $base ($model), key from OPENAI_API_KEY: serves what the edge cannot"
