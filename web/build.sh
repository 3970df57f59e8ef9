#!/bin/sh
# Vendors MQTT.js's browser bundle (npm package mqtt) into web/static, which
# is embedded in mqimd. The bundle is committed, so `go build` needs no npm;
# run this only to upgrade it: MQTT_VERSION=5.x.y web/build.sh
set -eu
MQTT_VERSION=${MQTT_VERSION:-5.16.0}
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts "mqtt@$MQTT_VERSION" >/dev/null
cp node_modules/mqtt/dist/mqtt.min.js "$dir/static/mqtt.min.js"
cp node_modules/mqtt/LICENSE.md "$dir/static/mqtt.LICENSE.md" 2>/dev/null ||
	cp node_modules/mqtt/LICENSE "$dir/static/mqtt.LICENSE.md"
echo "vendored mqtt@$MQTT_VERSION: $(wc -c <"$dir/static/mqtt.min.js") bytes"
