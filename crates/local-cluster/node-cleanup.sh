#!/bin/sh
# Removes everything a real node of the local control plane made, and restores the kernel settings it
# changed. Run by the harness when it stops, and by the watchdog when the owning process dies by any
# route. Idempotent: what is already gone is skipped.
#   node-cleanup.sh DIR      (DIR/node.env says what the node made; without it there is nothing to do)
dir="$1"
[ -n "$dir" ] && [ -f "$dir/node.env" ] || exit 0
# shellcheck disable=SC1091
. "$dir/node.env"

# 1. Processes that left the harness's process group: containerd's shims (new process groups) and
#    every container. They all live in the node's cgroup (containerd was started in it, the kubelet
#    puts pods under it), so the cgroup knows them all.
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
  pids=$(find "/sys/fs/cgroup/pids/${CGROUP_ROOT}" -name cgroup.procs -exec cat {} + 2>/dev/null)
  [ -z "$pids" ] && break
  # shellcheck disable=SC2086
  kill -9 $pids 2>/dev/null
  sleep 0.25
done

# 2. Mounts under the node's directory, deepest first: pod volumes (tmpfs for Secrets), container
#    root filesystems (overlay), /dev/shm of sandboxes, network-namespace bind mounts, the kubelet's
#    root bind-mounted on itself. A namespace whose last mount and process are gone is freed, and its
#    veth goes with it.
for _ in 1 2 3; do
  mounts=$(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount -l "$m" 2>/dev/null; done
done

# 3. Links: any veth still on the bridge, then the bridge (its address and routes go with it).
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  for l in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$l" 2>/dev/null
  done
  ip link del "$BRIDGE" 2>/dev/null
fi

# 4. Firewall rules: kube-proxy's (KUBE-*) and the CNI plugins' (CNI-*), in every table, for IPv4 and
#    IPv6; everything else in the tables is restored as it was.
for family in iptables ip6tables; do
  command -v "${family}-save" >/dev/null 2>&1 || continue
  if "${family}-save" 2>/dev/null | grep -qE 'KUBE-|CNI-'; then
    "${family}-save" | grep -vE '^:(KUBE-|CNI-)|^-A (KUBE-|CNI-)|-[jg] (KUBE-|CNI-)' | "${family}-restore"
  fi
done

# 5. cgroups, deepest first, in every hierarchy (v1 controllers and the unified one).
for c in /sys/fs/cgroup/*/"${CGROUP_ROOT}" "/sys/fs/cgroup/${CGROUP_ROOT}"; do
  [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# 6. Kernel settings the node changed (ip_forward; the kubelet's and kube-proxy's tunables).
if [ -f "$dir/sysctl.saved" ]; then
  while read -r key value; do
    sysctl -qw "$key=$value" 2>/dev/null
  done < "$dir/sysctl.saved"
fi

# The node's lock and its note for a later owner are ours only while they name this directory.
if [ -n "$LOCK_NOTE" ] && [ -f "$LOCK_NOTE" ] && grep -qF "$dir" "$LOCK_NOTE"; then
  rm -f "$LOCK_NOTE"
fi
exit 0
