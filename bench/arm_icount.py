#!/usr/bin/env python3
"""arm_icount.py - instructions the ARM kernels execute per block, counted
under qemu-aarch64 (an emulator's time says nothing about an A76; its
instruction counts do say how much work a kernel does per weight byte).

    bench/arm_icount.py [BUILD_DIR]      (default build-aarch64)

Runs BUILD_DIR/bench/bench_icount under `qemu-aarch64 -d nochain,exec,in_asm`
(every translated block logged once with its instructions, every execution
logged), sums the instructions executed inside the kernel function (all the
kernel code is inlined into it), and differences two shapes so that fixed
costs cancel:
  - decode: nc = 1, k = 4096, nr = 16 minus nr = 8: instructions per tile of
    4 weight rows x one block (32 values, or 256 for the K-quants),
    unpacking included;
  - prefill: nr = 8, k = 1024, nc = 64 minus nc = 32: instructions per
    additional activation row per 4 rows x one block (the unpacked tile is
    shared by all activation rows, so this is the micro-kernel alone);
  - act: activation quantizer per block (k = 2048 minus 1024, 4 rows).
Prints a markdown table. Needs qemu-aarch64, aarch64-linux-gnu-nm, python3.
"""
import os, re, subprocess, sys, tempfile

build = sys.argv[1] if len(sys.argv) > 1 else 'build-aarch64'
exe = os.path.join(build, 'bench', 'bench_icount')
SYMS = []
for line in subprocess.run(['aarch64-linux-gnu-nm', '-S', '--defined-only', exe],
                           capture_output=True, text=True, check=True).stdout.splitlines():
    p = line.split()
    if len(p) == 4:
        SYMS.append((int(p[0], 16), int(p[1], 16), p[3]))
ANCHOR = [a for a, _, n in SYMS if n == 'ea_kernels_variant_matmul'][0]


def count(tname, variant, k, nr, nc, act=False):
    """Instructions executed inside the called kernel function."""
    with tempfile.NamedTemporaryFile(suffix='.log', delete=False) as tf:
        log = tf.name
    try:
        r = subprocess.run(['qemu-aarch64', '-L', '/', '-d', 'nochain,exec,in_asm', '-D', log, exe, tname,
                            variant, str(k), str(nr), str(nc)] + (['act'] if act else []),
                           capture_output=True, text=True, check=True)
        m = re.search(r'ANCHOR 0x([0-9a-f]+) FN 0x([0-9a-f]+)', r.stderr)
        base = int(m.group(1), 16) - ANCHOR
        fn = int(m.group(2), 16) - base
        lo, size = [(a, s) for a, s, _ in SYMS if a == fn][0]
        lo += base
        hi = lo + size
        tb_size, execs, cur, n = {}, {}, None, 0
        with open(log) as f:
            for line in f:
                if line.startswith('IN:'):
                    if cur is not None:
                        tb_size[cur] = n
                    cur, n = None, 0
                    continue
                m = re.match(r'^0x([0-9a-f]+):\s', line)
                if m:
                    if cur is None:
                        cur = int(m.group(1), 16)
                    n += 1
                    continue
                m = re.match(r'^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/', line)
                if m:
                    if cur is not None:
                        tb_size[cur], cur = n, None
                    pc = int(m.group(1), 16)
                    execs[pc] = execs.get(pc, 0) + 1
        if cur is not None:
            tb_size[cur] = n
        return sum(tb_size.get(pc, 0) * c for pc, c in execs.items() if lo <= pc < hi)
    finally:
        os.unlink(log)


KQ = {'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'}
print('| variant | type | decode: insns / (4 rows x block) | prefill: insns / (4 rows x block x act row) '
      '| activation quantizer: insns / block |')
print('|---|---|---:|---:|---:|')
for variant in ('neon', 'neon-dotprod'):
    for t in ('F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'):
        bs = 256 if t in KQ else 32
        dec = (count(t, variant, 4096, 16, 1) - count(t, variant, 4096, 8, 1)) / (2 * 4096 / bs)
        pre = (count(t, variant, 1024, 8, 64) - count(t, variant, 1024, 8, 32)) / (32 * 2 * 1024 / bs)
        act = (count(t, variant, 2048, 1, 4, True) - count(t, variant, 1024, 1, 4, True)) / (4 * 1024 / bs)
        print(f'| {variant} | {t} | {dec:.0f} | {pre:.1f} | {act:.0f} |', flush=True)
