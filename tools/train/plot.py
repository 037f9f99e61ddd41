"""plot.py - the loss curves as a PNG, written with the standard library
(zlib, struct): train loss in blue, val loss in red, log-scale y axis with
a grid line and label per power-of-ten step (1, 2, 5 x 10^k), x axis = step
with a grid line every tenth of the run.

Holds: a tiny raster (lines, boxes, a 3x5 digit font). Does not hold: any
other chart.
"""
import math
import struct
import zlib

W, H = 800, 480
L, R, T, B = 60, 20, 20, 40  # margins

FONT = {  # 3x5, rows top to bottom
    "0": ["111", "101", "101", "101", "111"], "1": ["010", "110", "010", "010", "111"],
    "2": ["111", "001", "111", "100", "111"], "3": ["111", "001", "111", "001", "111"],
    "4": ["101", "101", "111", "001", "001"], "5": ["111", "100", "111", "001", "111"],
    "6": ["111", "100", "111", "101", "111"], "7": ["111", "001", "010", "010", "010"],
    "8": ["111", "101", "111", "101", "111"], "9": ["111", "101", "111", "001", "111"],
    ".": ["000", "000", "000", "000", "010"], "e": ["000", "111", "111", "100", "111"],
    "-": ["000", "000", "111", "000", "000"],
}


class Img:
    def __init__(self):
        self.px = bytearray(b"\xff" * (W * H * 3))

    def set(self, x, y, c):
        if 0 <= x < W and 0 <= y < H:
            i = (y * W + x) * 3
            self.px[i:i + 3] = bytes(c)

    def line(self, x0, y0, x1, y1, c, thick=1):
        n = int(max(abs(x1 - x0), abs(y1 - y0), 1))
        for k in range(n + 1):
            x = round(x0 + (x1 - x0) * k / n)
            y = round(y0 + (y1 - y0) * k / n)
            for dx in range(thick):
                for dy in range(thick):
                    self.set(x + dx, y + dy, c)

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s:
            g = FONT.get(ch)
            if g:
                for r, row in enumerate(g):
                    for col, bit in enumerate(row):
                        if bit == "1":
                            for a in range(scale):
                                for b in range(scale):
                                    self.set(x + col * scale + a, y + r * scale + b, c)
            x += 4 * scale

    def png(self, path):
        raw = b"".join(b"\0" + bytes(self.px[y * W * 3:(y + 1) * W * 3]) for y in range(H))

        def chunk(tag, data):
            return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff)
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 2, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def curves(path, train, val):
    pts = [p for p in train + val if p[1] > 0]
    if not pts:
        return
    xmax = max(p[0] for p in pts)
    ylo = math.floor(math.log10(min(p[1] for p in pts)))
    yhi = math.ceil(math.log10(max(p[1] for p in pts)))
    if yhi == ylo:
        yhi += 1
    img = Img()

    def X(s):
        return L + (W - L - R) * s / max(xmax, 1)

    def Y(v):
        return T + (H - T - B) * (yhi - math.log10(v)) / (yhi - ylo)
    grey = (210, 210, 210)
    for k in range(ylo, yhi + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** k
            if ylo <= math.log10(v) <= yhi:
                img.line(L, Y(v), W - R, Y(v), grey)
                img.text(4, int(Y(v)) - 5, ("%g" % v)[:6])
    for i in range(11):
        s = xmax * i / 10
        img.line(X(s), T, X(s), H - B, grey)
        img.text(int(X(s)) - 12, H - B + 8, "%d" % s)
    img.line(L, T, L, H - B, (0, 0, 0))
    img.line(L, H - B, W - R, H - B, (0, 0, 0))
    for series, c in ((train, (30, 90, 200)), (val, (210, 40, 40))):
        for (s0, v0), (s1, v1) in zip(series, series[1:]):
            if v0 > 0 and v1 > 0:
                img.line(X(s0), Y(v0), X(s1), Y(v1), c, 2)
    for s, v in val:  # val points as small squares
        if v > 0:
            for a in range(-3, 4):
                img.line(X(s) - 3, Y(v) + a, X(s) + 3, Y(v) + a, (210, 40, 40))
    # legend: blue box = train, red box = val (top right)
    for k, c in enumerate(((30, 90, 200), (210, 40, 40))):
        for a in range(12):
            img.line(W - R - 60 + k * 30, T + 5 + a, W - R - 48 + k * 30, T + 5 + a, c)
    img.png(path)


def main(argv):
    """plot.py OUT.png LOSSES.json... : the runs one after another (a later
    run continues from the earlier one's last step)."""
    import json
    train, val, off = [], [], 0
    for p in argv[2:]:
        log = json.load(open(p))
        train += [[s + off, v] for s, v in log["train"]]
        val += [[s + off, v] for s, v in log["val"]]
        off += max([s for s, _ in log["train"] + log["val"]] or [0])
    curves(argv[1], train, val)


if __name__ == "__main__":
    import sys
    main(sys.argv)
