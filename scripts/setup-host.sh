#!/usr/bin/env bash
# Installs the Debian packages Parley's build, tests and benchmarks need on the host.
# Idempotent: packages already installed are left alone, and nothing runs when all are present.
set -euo pipefail

PACKAGES=(
  gcc-riscv64-unknown-elf       # bare-metal cross compiler: ISA tests, demo and benchmark programs
  picolibc-riscv64-unknown-elf  # C library for the bare-metal programs
  gcc-riscv64-linux-gnu         # Linux cross compiler: static programs for qemu-riscv64 (differential tests)
  libc6-dev-riscv64-cross       # riscv64 glibc headers and static libraries for that compiler (only a Recommends of it)
  qemu-user                     # qemu-riscv64: the reference oracle and the user-mode speed baseline
  qemu-system-misc              # qemu-system-riscv64: the system-mode oracle and baseline
  device-tree-compiler          # dtc: checks the device trees Parley generates
  xz-utils                      # unpacks Debian's kernel modules (.ko.xz) for the guest image
  cpio                          # reference reader for the initramfs archives Parley writes (tests)
  debian-archive-keyring        # verifies Debian trixie's package lists for the guest image
  iproute2                      # network namespaces and TAP addresses for the virtio-net TAP test
  iputils-ping                  # the host side of the TAP test's pings
  passt                         # user-mode networking for `--net user` (no root, no TAP): its tests and the user-network bench
  e2fsprogs                     # debugfs: the host reads back files the guest wrote to an ext4 disk; mkfs.ext4: the page's data disk
  qemu-utils                    # qemu-img: creates, checks and converts the qcow2 images the qcow2 tests write
  chromium                      # the headless browser the page test and the web bench drive (Playwright downloads none)
  fonts-dejavu-core             # a monospace font for the page's terminal; without Recommends only fontconfig's first choice brings it
  debootstrap                   # the Debian root disk's first stage (parley image build --rootfs); it needs wget, a Depends
  openssh-client                # ssh-keygen for the root disk's login key; ssh and scp into the guest (tests)
  fakeroot                      # the root disk's first stage for a user who is not root (owners and device nodes)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: host packages present (${PACKAGES[*]})"
  exit 0
fi

echo "setup: installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: need root to install ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "setup: apt-get update"
$SUDO apt-get update -q
echo "setup: apt-get install ${missing[*]}"
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
