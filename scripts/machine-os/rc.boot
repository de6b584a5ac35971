#!/bin/sh
# machine-os boot: mounts, modules, disks (found by serial), hostname and SSH key from the
# config disk, network by DHCP, cgroup v2, sshd, then the engine once it has been provisioned.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
log() { echo "machine-os: $*" >/dev/console; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
ln -sf /run /var/run
mkdir -p /run/sshd /run/machine-config
# cgroup v2 only, with the controllers the engine uses delegated below the root
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
echo "+cpu +memory +pids +io +cpuset" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
    echo "+cpu +memory +pids" >/sys/fs/cgroup/cgroup.subtree_control
ip link set lo up
modprobe -a $(cat /etc/modules) 2>/dev/null

disk_by_serial() { # SERIAL -> vdX (virtio) or sdX (SATA: VirtualBox's AHCI port SerialNumber)
    local d
    for d in /sys/block/vd*; do
        [ -e "$d/serial" ] && [ "$(cat "$d/serial")" = "$1" ] && { echo "${d##*/}"; return 0; }
    done
    for d in /sys/block/sd*; do # SCSI VPD page 0x80: 4 header bytes, then the serial
        [ -e "$d/device/vpd_pg80" ] &&
            [ "$(tail -c +5 "$d/device/vpd_pg80" | tr -d ' \000')" = "$1" ] &&
            { echo "${d##*/}"; return 0; }
    done
    return 1
}
i=0
while [ $i -lt 50 ] && ! disk_by_serial machine-data >/dev/null; do sleep 0.1; i=$((i + 1)); done

# (busybox's shell runs its own applets before PATH: programs from Debian packages that share an
# applet's name are called by their full path)

# config disk: a plain tar at byte 0 (hostname, authorized_keys); read at every boot
if cfg=$(disk_by_serial machine-config); then
    tar -xf "/dev/$cfg" -C /run/machine-config 2>/dev/null || log "config disk /dev/$cfg is not a tar"
else
    log "no config disk (serial machine-config)"
fi
name=machine-os
[ -s /run/machine-config/hostname ] && name=$(head -n1 /run/machine-config/hostname)
hostname "$name"
echo "$name" >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost\n' "$name" >/etc/hosts
mkdir -p -m 0700 /root/.ssh
if [ -f /run/machine-config/authorized_keys ]; then
    cp /run/machine-config/authorized_keys /root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
fi

# data disk: formatted on first boot only (ext4 magic 0xef53 at byte 1080), then persistent
if data=$(disk_by_serial machine-data); then
    magic=$(dd if="/dev/$data" bs=2 skip=540 count=1 2>/dev/null | od -An -tx2 | tr -d ' \n')
    if [ "$magic" != ef53 ]; then
        log "formatting the data disk /dev/$data"
        /sbin/mke2fs -q -t ext4 -F -L machine-data "/dev/$data"
    fi
    mount -t ext4 -o noatime "/dev/$data" /mnt/data || log "cannot mount the data disk /dev/$data"
else
    log "no data disk (serial machine-data): nothing will persist"
fi
mkdir -p /mnt/data/engine /mnt/data/etc-machine-engine /mnt/data/ssh /mnt/data/init.d \
    /var/lib/machine-engine /etc/machine-engine
mount --bind /mnt/data/engine /var/lib/machine-engine
mount --bind /mnt/data/etc-machine-engine /etc/machine-engine
rm -rf /etc/init.d && ln -s /mnt/data/init.d /etc/init.d
for t in ed25519 ecdsa; do
    [ -s /mnt/data/ssh/ssh_host_${t}_key ] ||
        /usr/bin/ssh-keygen -q -t $t -N '' -f /mnt/data/ssh/ssh_host_${t}_key
done

# every NIC by DHCP (VirtualBox: eth0 NAT, eth1 host-only); only a lease with a router routes
for n in /sys/class/net/eth*; do
    [ -e "$n" ] && udhcpc -i "${n##*/}" -s /etc/udhcpc.script -x "hostname:$name" -t 20 -T 1 -A 3 -b -S \
        >/dev/null 2>&1
done
/usr/sbin/sshd -f /etc/ssh/sshd_config
mkdir -p /var/log
acpid -l /var/log/acpid.log

# the engine, as provisioning left it (its service files live on the data disk)
if [ -x /etc/init.d/machine-engine ] && [ -x /etc/machine-engine/supervise ] &&
    [ ! -e /etc/machine-engine/stopped ]; then
    /etc/init.d/machine-engine start
fi
(
    i=0
    while [ $i -lt 600 ]; do
        ipaddr=$(ip -4 -o addr show dev eth0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)
        [ -n "$ipaddr" ] && { log "ssh ready $ipaddr (uptime $(cut -d' ' -f1 /proc/uptime) s)"; exit 0; }
        sleep 0.1
        i=$((i + 1))
    done
    log "no address on eth0"
) &
