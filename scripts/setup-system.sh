#!/usr/bin/env bash
# Install the Debian system packages that tpru's tests and engines need.
#
#   scripts/setup-system.sh            # every group listed below
#   scripts/setup-system.sh browser    # only the named groups
#   scripts/setup-system.sh --list     # show the groups and their packages
#
# Idempotent: packages already installed are not touched, and when nothing is
# missing the script exits without running apt-get at all. When it cannot
# install (no apt-get, not root and no sudo, apt-get failing) it prints a
# warning and exits 0, so the Python-only parts of tpru still set up and run;
# the tests that need a missing package skip with a reason.
#
# Exit status: 0 (installed, already present, or warned), 2 on an unknown group.

set -euo pipefail

# One entry per package: "GROUP:PACKAGE" or "GROUP:PACKAGE:COMPONENT" when the
# package is outside Debian's main component (the script enables it on demand).
# A scenario that needs a system package adds a line here; nothing else changes.
SYSTEM_PACKAGES=(
    "browser:chromium"          # tests/test_view.py renders the HTML viewer headless; sim:gui
    "browser:fonts-liberation"  # readable text in screenshots of that page
    "browser:fonts-dejavu-core" # sim:gui's web app names DejaVu Sans, so its frames are stable
    "lego:leocad"               # sim:lego renders LDraw models one PNG per building step
    "lego:ldraw-parts:non-free" # the LDraw parts library LeoCAD reads (/usr/share/ldraw)
    "lego:xvfb"                 # LeoCAD needs an X display even to render (sim:lego runs Xvfb)
    "lego:xauth"                # for xvfb-run, to run LeoCAD by hand the same way
    "lego:libgl1-mesa-dri"      # software OpenGL (llvmpipe) for LeoCAD on that display
    "nav:libegl1"               # sim:nav: MiniWorld renders headless through EGL
    "nav:libegl-mesa0"          # Mesa's EGL (llvmpipe on machines without a GPU)
    "nav:libgl1-mesa-dri"
    "nav:libglu1-mesa"          # pyglet's GLU, used by MiniWorld
)

log() { printf 'setup-system: %s\n' "$*" >&2; }
warn() { printf 'setup-system: WARNING: %s\n' "$*" >&2; }

# Stop without failing the caller: the Python parts work without these packages.
give_up() {
    warn "$*"
    warn "not installed: ${missing[*]:-(nothing)}; tests that need them will be skipped."
    exit 0
}

list_groups() {
    local entry
    for entry in "${SYSTEM_PACKAGES[@]}"; do
        IFS=: read -r group package component <<<"$entry"
        printf '%-10s %s%s\n' "$group" "$package" "${component:+ ($component)}"
    done
}

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
    [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

# Add a deb822 source for one extra component of the running Debian release.
enable_component() {
    local component=$1 codename file
    codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
    [[ -n "$codename" ]] || return 1
    file="/etc/apt/sources.list.d/tpru-${component}.sources"
    log "enabling Debian component '$component' in $file"
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: %s\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$codename" "$codename" "$component" | $SUDO tee "$file" >/dev/null
}

case "${1:-}" in
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --list) list_groups; exit 0 ;;
esac

# Which groups to install: the arguments, or every group listed.
declare -A wanted=()
known=" "
for entry in "${SYSTEM_PACKAGES[@]}"; do
    [[ "$known" == *" ${entry%%:*} "* ]] || known+="${entry%%:*} "
done
if (($# == 0)); then
    for entry in "${SYSTEM_PACKAGES[@]}"; do wanted[${entry%%:*}]=1; done
else
    for group in "$@"; do
        if [[ "$known" != *" $group "* ]]; then
            printf 'setup-system: unknown group %q (known:%s)\n' "$group" "$known" >&2
            exit 2
        fi
        wanted[$group]=1
    done
fi

# What is missing, and which extra components it needs.
missing=()
declare -A components=()
for entry in "${SYSTEM_PACKAGES[@]}"; do
    IFS=: read -r group package component <<<"$entry"
    [[ -n "${wanted[$group]:-}" ]] || continue
    is_installed "$package" && continue
    missing+=("$package")
    [[ -z "${component:-}" ]] || components[$component]=1
done

if ((${#missing[@]} == 0)); then
    log "all requested system packages are installed (${!wanted[*]})"
    exit 0
fi
log "missing: ${missing[*]}"

command -v apt-get >/dev/null || give_up "apt-get not found (not Debian?); install these by hand."
if [[ $(id -u) -eq 0 ]]; then
    SUDO=""
elif command -v sudo >/dev/null; then
    SUDO="sudo"
else
    give_up "not root and sudo is not available; run this script as root."
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || give_up "apt-get update failed."

for component in "${!components[@]}"; do
    needs_it=0
    for package in "${missing[@]}"; do has_candidate "$package" || needs_it=1; done
    if ((needs_it)); then
        enable_component "$component" || give_up "could not enable component '$component'."
        $SUDO apt-get update -qq || give_up "apt-get update failed."
    fi
done

$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    || give_up "apt-get install failed."
log "installed: ${missing[*]}"
