#!/usr/bin/env bash
# Installs the hcmon agent as a systemd service on this machine.
#   deploy/install-agent.sh --collector https://collector.lan:4317 --enroll-token TOKEN
#                           [--binary PATH] [--node-name NAME]
# TOKEN is what `hcmon enroll <node>` printed on the collector (for this node's name): it is
# written to /etc/hcmon/hcmon-agent.enroll-token (0600 root:root) and handed to the agent as a
# systemd credential; on its first start the agent trades it for its certificate. Without
# --binary it builds the release binary from this checkout (needs cargo). An existing
# /etc/hcmon/hcmon-agent.toml is kept; a new one is made from deploy/hcmon-agent.toml. Either
# way it is made 0600 root:root, as it may hold the collector's token: the unit hands it to the
# agent as a systemd credential.
set -euo pipefail
cd "$(dirname "$0")/.."

collector="" binary="" node_name="" enroll_token=""
while [ $# -gt 0 ]; do
  case "$1" in
    --collector) collector="${2:?--collector needs a URL like https://collector.lan:4317}"; shift 2 ;;
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    --node-name) node_name="${2:?--node-name needs a name}"; shift 2 ;;
    --enroll-token) enroll_token="${2:?--enroll-token needs the token \`hcmon enroll <node>\` printed}"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$enroll_token" in
  ""|hce1.*) ;;
  *) echo "--enroll-token: not an enrollment token (copy the whole hce1.… line \`hcmon enroll <node>\` printed)" >&2; exit 2 ;;
esac
if [ -n "$enroll_token" ]; then
  case "$collector" in
    ""|https://*) ;;
    *) echo "--enroll-token needs an https:// --collector URL (enrollment is for TLS)" >&2; exit 2 ;;
  esac
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root (it writes /usr/local/bin, /etc and systemd units)" >&2; exit 1; }

if [ -z "$binary" ]; then
  cargo build --release --locked -p hcmon-agent
  binary="${CARGO_TARGET_DIR:-target}/release/hcmon-agent"
fi
[ -x "$binary" ] || { echo "no agent binary at $binary" >&2; exit 1; }

install -m 0755 "$binary" /usr/local/bin/hcmon-agent
install -d -m 0755 /etc/hcmon
if [ ! -e /etc/hcmon/hcmon-agent.toml ]; then
  install -m 0600 -o root -g root deploy/hcmon-agent.toml /etc/hcmon/hcmon-agent.toml
  [ -n "$collector" ] && sed -i "s|^collector = .*|collector = \"$collector\"|" /etc/hcmon/hcmon-agent.toml
  [ -n "$node_name" ] && sed -i "s|^node_name = .*|node_name = \"$node_name\"|" /etc/hcmon/hcmon-agent.toml
  echo "wrote /etc/hcmon/hcmon-agent.toml"
else
  chown root:root /etc/hcmon/hcmon-agent.toml
  chmod 0600 /etc/hcmon/hcmon-agent.toml
  echo "kept the existing /etc/hcmon/hcmon-agent.toml (now mode 0600)"
fi
install -m 0644 deploy/hcmon-agent.service /etc/systemd/system/hcmon-agent.service
if [ -n "$enroll_token" ]; then
  # The agent runs as a dynamic user that cannot read root's files: systemd hands it the token
  # as a credential, like the config.
  (umask 077; printf '%s\n' "$enroll_token" > /etc/hcmon/hcmon-agent.enroll-token)
  chown root:root /etc/hcmon/hcmon-agent.enroll-token
  install -d -m 0755 /etc/systemd/system/hcmon-agent.service.d
  cat > /etc/systemd/system/hcmon-agent.service.d/enroll-token.conf <<'UNIT'
[Service]
LoadCredential=enroll-token:/etc/hcmon/hcmon-agent.enroll-token
UNIT
  sed -i -e '/^#\? \?enroll_token = /d' \
    -e 's|^#\? \?enroll_token_file = .*|enroll_token_file = "/run/credentials/hcmon-agent.service/enroll-token"|' \
    /etc/hcmon/hcmon-agent.toml
  # A kept config without the line gets it first, above any [table].
  grep -q '^enroll_token_file = ' /etc/hcmon/hcmon-agent.toml ||
    sed -i '1i enroll_token_file = "/run/credentials/hcmon-agent.service/enroll-token"' /etc/hcmon/hcmon-agent.toml
  echo "wrote the enrollment token to /etc/hcmon/hcmon-agent.enroll-token (0600); the agent enrolls at its next start"
fi

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable --now hcmon-agent.service
  systemctl --no-pager --lines=5 status hcmon-agent.service || true
else
  echo "systemd is not running here: start /usr/local/bin/hcmon-agent --config /etc/hcmon/hcmon-agent.toml yourself"
fi
