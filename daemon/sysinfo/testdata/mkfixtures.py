#!/usr/bin/env python3
"""Writes the fixture trees of daemon/sysinfo (run from this directory).

The trees are hand-written after the formats of the real files: /proc/meminfo,
/proc/swaps, /proc/self/{cgroup,mountinfo}, /sys/block/zram*/{disksize,mm_stat,
comp_algorithm}, /sys/block/mmcblk*/device/type, /proc/device-tree/{model,
compatible}, /etc/nv_tegra_release, /var/lib/dpkg/status, the TensorRT
library names, /proc/driver/nvidia/{version,gpus/*/information}. The numbers
are typical of each board as published (e.g. 4 zram devices of 494.6 MB on a
Nano 4 GB with JetPack 4.6), not a capture of one machine.
"""
import os, shutil

def w(root, path, content, mode=0o644):
    p = os.path.join(root, path)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(content.encode() if isinstance(content, str) else content)

def meminfo(total_kb, avail_kb, swap_total_kb, swap_free_kb):
    return (f"MemTotal:       {total_kb} kB\nMemFree:        {avail_kb//2} kB\n"
            f"MemAvailable:   {avail_kb} kB\nBuffers:           10240 kB\nCached:           400000 kB\n"
            f"SwapCached:            0 kB\nSwapTotal:      {swap_total_kb} kB\nSwapFree:       {swap_free_kb} kB\n")

def swaps(rows):
    s = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    for path, typ, size, used, prio in rows:
        s += f"{path:<40}{typ}\t{size}\t\t{used}\t\t{prio}\n"
    return s

def zram(root, n, disksize, used_each=0, alg="lzo [lz4] lz4hc 842"):
    for i in range(n):
        w(root, f"sys/block/zram{i}/disksize", f"{disksize}\n")
        w(root, f"sys/block/zram{i}/comp_algorithm", alg + "\n")
        w(root, f"sys/block/zram{i}/mm_stat", f"{used_each*3} {used_each} {used_each+4096} 0 {used_each+4096} 0 0 0 0\n")

V1_MOUNTS = ("25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
             "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw\n"
             "30 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory\n")
V2_MOUNTS = "35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"

def v1_unit(root, limit="9223372036854771712"):
    w(root, "proc/self/cgroup", "12:memory:/system.slice/trtd.service\n1:name=systemd:/system.slice/trtd.service\n0::/system.slice/trtd.service\n")
    w(root, "sys/fs/cgroup/unified/cgroup.controllers", "")
    d = "sys/fs/cgroup/memory/system.slice/trtd.service/"
    w(root, d + "memory.limit_in_bytes", limit + "\n")
    w(root, d + "memory.memsw.limit_in_bytes", limit + "\n")

def v2_unit(root, mmax="max", smax="max"):
    w(root, "proc/self/cgroup", "0::/system.slice/trtd.service\n")
    d = "sys/fs/cgroup/system.slice/trtd.service/"
    w(root, d + "cgroup.controllers", "cpu io memory pids\n")
    w(root, d + "memory.max", mmax + "\n")
    w(root, d + "memory.swap.max", smax + "\n")

def dpkg(root, pkgs):
    s = ""
    for name, ver in pkgs:
        s += f"Package: {name}\nStatus: install ok installed\nArchitecture: arm64\nVersion: {ver}\n\n"
    w(root, "var/lib/dpkg/status", s)

def procs(root, names):
    for i, n in enumerate(names):
        w(root, f"proc/{1000+i}/comm", n + "\n")

def nano4gb(r):
    w(r, "proc/meminfo", meminfo(4059432, 2389104, 2029696, 2029696))
    w(r, "proc/swaps", swaps([(f"/dev/zram{i}", "partition", 507424, 0, 5) for i in range(4)]))
    zram(r, 4, 519602176)
    w(r, "proc/device-tree/model", b"NVIDIA Jetson Nano Developer Kit\x00")
    w(r, "proc/device-tree/compatible", b"nvidia,p3450-0000\x00nvidia,jetson-nano\x00nvidia,tegra210\x00")
    w(r, "etc/nv_tegra_release", "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n")
    w(r, "usr/lib/aarch64-linux-gnu/libnvinfer.so.8.2.1", "")
    w(r, "usr/lib/aarch64-linux-gnu/libnvinfer.so.8", "")
    dpkg(r, [("libnvinfer8", "8.2.1-1+cuda10.2")])
    w(r, "proc/self/mountinfo", "22 1 179:1 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p1 rw\n" + V1_MOUNTS)
    v1_unit(r)
    w(r, "sys/block/mmcblk0/device/type", "SD\n")
    procs(r, ["systemd", "Xorg", "gnome-shell", "gdm3", "sshd"])

def nano2gb(r):
    w(r, "proc/meminfo", meminfo(2028168, 1012000, 5111272, 5080000))
    w(r, "proc/swaps", swaps([(f"/dev/zram{i}", "partition", 253508, 8000, 5) for i in range(4)] +
                              [("/var/swapfile", "file", 4194300, 0, -2)]))
    zram(r, 4, 259592192, used_each=2048000)
    w(r, "proc/device-tree/model", b"NVIDIA Jetson Nano 2GB Developer Kit\x00")
    w(r, "proc/device-tree/compatible", b"nvidia,p3541-0000\x00nvidia,p3448-0003\x00nvidia,jetson-nano\x00nvidia,tegra210\x00")
    w(r, "etc/nv_tegra_release", "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64, DATE: Fri Jun  9 04:25:08 UTC 2023\n")
    w(r, "usr/lib/aarch64-linux-gnu/libnvinfer.so.8.2.1", "")
    dpkg(r, [("libnvinfer8", "8.2.1-1+cuda10.2")])
    w(r, "proc/self/mountinfo", "22 1 179:1 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p1 rw\n" + V1_MOUNTS)
    v1_unit(r)
    w(r, "sys/block/mmcblk0/device/type", "SD\n")
    procs(r, ["systemd", "Xorg", "lxsession", "lxpanel"])

def orin_nano(r):
    w(r, "proc/meminfo", meminfo(7620268, 5811200, 3810128, 3810128))
    w(r, "proc/swaps", swaps([(f"/dev/zram{i}", "partition", 635020, 0, 5) for i in range(6)]))
    zram(r, 6, 650260480)
    w(r, "proc/device-tree/model", b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    w(r, "proc/device-tree/compatible", b"nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00")
    w(r, "etc/nv_tegra_release", "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, DATE: Mon May  6 17:34:21 UTC 2024\n# KERNEL_VARIANT: oot\n")
    w(r, "usr/lib/aarch64-linux-gnu/libnvinfer.so.8.6.2", "")
    dpkg(r, [("libnvinfer8", "8.6.2.3-1+cuda12.2")])
    w(r, "proc/self/mountinfo", "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw\n" + V2_MOUNTS)
    v2_unit(r)
    w(r, "sys/block/nvme0n1/size", "1000215216\n")
    w(r, "sys/block/mmcblk0/device/type", "SD\n")
    procs(r, ["systemd", "gnome-shell", "Xorg", "gdm3"])

def agx_orin(r):
    w(r, "proc/meminfo", meminfo(64335836, 60100000, 32167912, 32167912))
    w(r, "proc/swaps", swaps([(f"/dev/zram{i}", "partition", 2680660, 0, 5) for i in range(12)]))
    zram(r, 12, 2744995840)
    w(r, "proc/device-tree/model", b"Jetson AGX Orin Developer Kit\x00")
    w(r, "proc/device-tree/compatible", b"nvidia,p3737-0000+p3701-0005\x00nvidia,p3701-0005\x00nvidia,tegra234\x00")
    w(r, "etc/nv_tegra_release", "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n")
    w(r, "usr/lib/aarch64-linux-gnu/libnvinfer.so.8.5.2", "")
    dpkg(r, [("libnvinfer8", "8.5.2-1+cuda11.4")])
    w(r, "proc/self/mountinfo", "22 1 179:1 / / rw,relatime shared:1 - ext4 /dev/mmcblk0p1 rw\n" + V1_MOUNTS)
    v1_unit(r, limit=str(48 << 30))
    w(r, "sys/block/mmcblk0/device/type", "MMC\n")
    w(r, "sys/block/nvme0n1/size", "1000215216\n")
    procs(r, ["systemd", "sshd"])

def x86_dgpu(r):
    w(r, "proc/meminfo", meminfo(32795612, 28012000, 2097148, 2097148))
    w(r, "proc/swaps", swaps([("/dev/nvme0n1p3", "partition", 2097148, 0, -2)]))
    w(r, "usr/lib/x86_64-linux-gnu/libnvinfer.so.10.7.0", "")
    dpkg(r, [("libnvinfer10", "10.7.0.23-1+cuda12.6")])
    w(r, "proc/self/mountinfo", "26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n" + V2_MOUNTS)
    v2_unit(r, mmax=str(24 << 30), smax="0")
    w(r, "sys/block/nvme0n1/size", "1000215216\n")
    w(r, "proc/driver/nvidia/version", "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.120  Fri Sep 13 10:10:01 UTC 2024\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n")
    w(r, "proc/driver/nvidia/gpus/0000:01:00.0/information", "Model: \t\t NVIDIA GeForce RTX 3060\nIRQ:   \t\t 140\nGPU UUID: \t GPU-5d2c1e2a-0000-0000-0000-000000000000\nVideo BIOS: \t 94.06.2f.00.9a\nBus Type: \t PCIe\nDMA Size: \t 47 bits\nDMA Mask: \t 0x7fffffffffff\nBus Location: \t 0000:01:00.0\nDevice Minor: \t 0\nGPU Excluded:\t No\n")
    # What the test double of nvidia-smi prints for the query trtd makes.
    w(r, "nvidia-smi.csv", "NVIDIA GeForce RTX 3060, 12288, 415, 550.120, 8.6\n")
    procs(r, ["systemd", "Xorg", "gnome-shell"])

for name, fn in [("nano-4gb", nano4gb), ("nano-2gb", nano2gb), ("orin-nano-8gb", orin_nano),
                 ("agx-orin", agx_orin), ("x86-dgpu", x86_dgpu)]:
    shutil.rmtree(name, ignore_errors=True)
    fn(name)
