#!/bin/sh
# run-config.sh OUT [home] - writes the configuration `make run` serves with
# when OPENAI_API_KEY is set: a cloud upstream at OPENAI_BASE_URL (default
# https://api.openai.com/v1) with OPENAI_MODEL (default gpt-4o-mini). With
# `home` (the built-in model, models/edgeagent-home.gguf): every request
# goes to it first (task home, mode cascade) and what it hands off goes to
# the cloud, as does the task `chat`; without: the local model first (mode
# prefer_edge) and the cloud for what the edge cannot serve (overload, a
# prompt past its context, a failure). The key itself stays in the
# environment: the file names the variable (docs/ROUTING.md).
set -eu
out=$1
variant=${2:-}
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
YAML
if [ "$variant" = home ]; then
  cat >>"$out" <<YAML
tasks:
  - {name: home, mode: cascade, upstreams: [local, cloud]}
  - {name: chat, mode: cloud_only}
routing:
  default_task: home
YAML
  echo "  cloud:      $base ($model), key from OPENAI_API_KEY: takes what the home model hands off"
else
  cat >>"$out" <<YAML
routing:
  defaults: {mode: prefer_edge}
YAML
  echo "  cloud:      $base ($model), key from OPENAI_API_KEY: serves what the edge cannot"
fi
