#!/usr/bin/env bash
# Prepares this machine to build and run Lepton's image (docker/Dockerfile)
# with Debian's podman, without a Docker engine and without any registry.
# Idempotent: each step runs only when its result is missing or out of date.
#   1. installs podman and runc (apt, only when missing). Rootful podman with
#      --network=host needs nothing else: no uidmap or slirp4netns (rootless
#      only), and no fuse-overlayfs (the kernel's overlayfs works here);
#      debootstrap for step 3;
#   2. writes a containers.conf (path below) that makes podman usable in this
#      sandbox: the runc runtime (crun fails on its mixed cgroup setup), the
#      cgroupfs manager (no systemd), and default ulimits no higher than the
#      hard limits (podman's default nofile of 1048576 is refused here);
#   3. creates the base images docker.io/library/debian:bookworm and
#      debian:bookworm-slim, those podman does not have, with debootstrap from
#      the Debian mirror apt is configured with, so that the Dockerfile keeps
#      its `FROM debian:bookworm` (build stage) and `debian:bookworm-slim`
#      (runtime stage) and nothing is pulled. As Debian's official images
#      are: -slim is the same system without documentation, man pages and
#      locales, and keeps later packages from installing them.
#
#   scripts/container-setup.sh
#   export CONTAINERS_CONF=/etc/lepton-podman/containers.conf
#   podman build --network=host -f docker/Dockerfile -t lepton .
#
# Environment: LEPTON_CONTAINERS_CONF overrides where the containers.conf is
# written (default /etc/lepton-podman/containers.conf). Must run as root.
set -euo pipefail

conf=${LEPTON_CONTAINERS_CONF:-/etc/lepton-podman/containers.conf}
base_image=docker.io/library/debian:bookworm
slim_image=docker.io/library/debian:bookworm-slim
suite=bookworm

log() { echo "container-setup: $*"; }
die() {
  echo "container-setup: error: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root (rootful podman, apt, debootstrap)"

# 1. Packages.
packages=(podman runc debootstrap)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. containers.conf. Rewritten only when its content would change, so that a
# second run leaves the file (and its mtime) alone.
nofile=$(ulimit -Hn)
if [[ $nofile == unlimited ]]; then nofile=1048576; fi
wanted=$(
  cat <<EOF
# Written by scripts/container-setup.sh; point podman to it with
# CONTAINERS_CONF=$conf
[containers]
# No higher than this machine's hard limits (ulimit -Hn is $nofile): podman's
# defaults are higher, and the runtime refuses them.
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]

[engine]
# crun fails on this machine's mixed cgroup setup; runc works.
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
)
if [[ ! -f $conf ]] || [[ "$(cat "$conf")" != "$wanted" ]]; then
  mkdir -p "$(dirname "$conf")"
  printf '%s\n' "$wanted" >"$conf"
  log "wrote $conf"
fi
export CONTAINERS_CONF=$conf

# 3. The base images.
if podman image exists "$base_image" && podman image exists "$slim_image"; then
  log "$base_image and $slim_image present; CONTAINERS_CONF=$conf"
  exit 0
fi

# The mirror and the security archive apt is configured with, from the
# one-line sources.list and the deb822 *.sources files: the first "deb" entry
# for the suite, and the first for $suite-security. Printed as "suite uri".
apt_entries() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # deb [options] uri suite component...
    awk '$1 == "deb" {
           i = 2
           if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
           print $(i + 1), $i
         }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # Stanzas separated by blank lines; comment lines ignored.
    awk 'function flush() {
           if (types ~ /(^| )deb( |$)/ && enabled != "no")
             for (s = 1; s <= ns; s++) for (u = 1; u <= nu; u++)
               print suites[s], uris[u]
           types = ""; enabled = ""; ns = 0; nu = 0
         }
         /^#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key = tolower($1); sub(/:$/, "", key) }
         key == "types" { types = ""; for (i = 2; i <= NF; i++) types = types " " $i; types = types " " }
         key == "enabled" { enabled = tolower($2) }
         key == "uris" { for (i = 2; i <= NF; i++) uris[++nu] = $i }
         key == "suites" { for (i = 2; i <= NF; i++) suites[++ns] = $i }
         END { flush() }' "$f"
  done
}
entries=$(apt_entries)
mirror=$(awk -v s="$suite" '$1 == s { print $2; exit }' <<<"$entries")
security=$(awk -v s="$suite-security" '$1 == s { print $2; exit }' <<<"$entries")
[[ -n $mirror ]] || die "no 'deb' entry for suite $suite in /etc/apt/sources.list or /etc/apt/sources.list.d/"
log "creating the base images with debootstrap from $mirror"

rootfs=$(mktemp -d /var/tmp/lepton-debootstrap.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" \
  >"$rootfs.log" 2>&1; then
  tail -n 30 "$rootfs.log" >&2
  die "debootstrap failed (log: $rootfs.log)"
fi
rm -f "$rootfs.log"

# The image's apt sources, laid out as in Debian's official image (deb822,
# with the updates and security suites), pointing at the mirrors this machine
# uses: a build inside the image fetches packages from where the host does.
rm -f "$rootfs/etc/apt/sources.list"
{
  cat <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  if [[ -n $security ]]; then
    cat <<EOF

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"
# Nothing of this host in the image (the runtime provides these at run time),
# and no package caches.
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
  "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*

import_image() {
  local image=$1
  tar --numeric-owner -C "$rootfs" -c . |
    podman import --change 'CMD ["bash"]' - "$image" >/dev/null
  log "imported $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
}
if ! podman image exists "$base_image"; then import_image "$base_image"; fi

# -slim, by the rules of Debian's official images (debuerreotype's slimify):
# dpkg excludes these paths from every later install, and they are removed
# from the packages already there. Copyright files stay.
slim_excludes=(/usr/share/doc/ /usr/share/groff/ /usr/share/info/
  /usr/share/linda/ /usr/share/lintian/overrides/ /usr/share/locale/
  /usr/share/man/)
{
  echo "# Written by scripts/container-setup.sh, as in Debian's -slim images."
  for d in "${slim_excludes[@]}"; do echo "path-exclude ${d}*"; done
  echo "path-include /usr/share/doc/*/copyright"
} >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
for d in "${slim_excludes[@]}"; do
  [[ -d $rootfs$d ]] || continue
  find "$rootfs$d" -mindepth 1 \( -type f -o -type l \) \
    ! \( -path "$rootfs/usr/share/doc/*/copyright" \) -delete
  find "$rootfs$d" -mindepth 1 -depth -type d -empty -delete
done
if ! podman image exists "$slim_image"; then import_image "$slim_image"; fi
log "CONTAINERS_CONF=$conf"
