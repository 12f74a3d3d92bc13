#!/usr/bin/env python3
"""Compare src/preprocess/cv_resize.rs against cv2.resize (record of the proof; not run by CI).

Usage: check_cv_resize.py HELPER [--cases N] [--seed S] [--ipp]
HELPER is a binary built around cv_resize.rs that reads records from stdin,
  [u32 mode (0=INTER_AREA, 1=INTER_CUBIC), u32 sw, sh, dw, dh] (little endian) + sw*sh*3 RGB8 bytes,
and writes the resized images, concatenated, to stdout. The one used (a scratch crate with
`#[path = ".../src/preprocess/cv_resize.rs"] mod cv_resize;`) was essentially:
    let mut inp = Vec::new(); std::io::stdin().read_to_end(&mut inp)?; let mut p = 0;
    while p < inp.len() {
        let h: Vec<usize> = (0..5).map(|i| u32::from_le_bytes(inp[p + 4 * i..p + 4 * i + 4].try_into().unwrap()) as usize).collect();
        p += 20; let n = h[1] * h[2] * 3; let src = &inp[p..p + n]; p += n;
        let f = if h[0] == 0 { cv_resize::resize_area_rgb8 } else { cv_resize::resize_cubic_rgb8 };
        out.write_all(&f(src, h[1], h[2], h[3], h[4]))?;
    }
Downscales (dst <= src on both axes) go to INTER_AREA, anything with a growing axis to INTER_CUBIC.
Expected result: max abs difference 0 on every case. INTER_CUBIC is compared with IPP disabled
(cv2.ipp.setUseIPP(False)) because x86_64 wheels hand 8-bit cubic resizes to Intel IPP, whose
closed-source kernel differs from OpenCV's own code by +-1; --ipp reports that difference too.
Reference used: opencv-python-headless 5.0.0.93 (OpenCV 5.0.0), numpy 2.4.6.
"""
import argparse, struct, subprocess, sys
import cv2, numpy as np

FIXED = [  # size pairs the preprocessing produces, plus awkward ones
    (1208, 680, 504, 284), (504, 284, 504, 280), (640, 480, 504, 378), (200, 150, 504, 378),
    (1920, 1080, 504, 284), (333, 500, 336, 504), (500, 333, 504, 336), (101, 37, 14, 5),
    (3, 3, 14, 14), (500, 300, 504, 294), (640, 480, 1008, 756), (3840, 2160, 504, 284),
    (1008, 568, 504, 284), (1512, 852, 504, 284), (147, 147, 49, 49), (8, 6, 4, 3), (7, 5, 3, 2),
    (5, 4, 11, 9), (1, 1, 5, 7), (1, 9, 1, 3), (9, 1, 3, 1), (2, 2, 1, 1), (700, 700, 1, 1),
]

def make_image(rng, w, h):
    kind = rng.integers(0, 4)
    if kind == 0:  # uniform noise
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == 1:  # smooth gradients (rounding ties are frequent here)
        y, x = np.mgrid[0:h, 0:w]
        chans = [(a * x + b * y + c) for a, b, c in rng.uniform(-3, 3, (3, 3)) * [1, 1, 40]]
        return np.clip(np.stack(chans, -1) + 128, 0, 255).astype(np.uint8)
    if kind == 2:  # extremes only: overshoot/undershoot of the cubic kernel saturates
        return (rng.integers(0, 2, (h, w, 3)) * 255).astype(np.uint8)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # blocks of constant colour
    return np.repeat(np.repeat(img[: (h + 3) // 4, : (w + 3) // 4], 4, 0), 4, 1)[:h, :w].copy()

def random_case(rng):
    sw, sh = (int(v) for v in rng.integers(1, 701, 2))
    r = rng.random()
    if r < 0.4:  # area, arbitrary ratio
        dw, dh = int(rng.integers(1, sw + 1)), int(rng.integers(1, sh + 1))
    elif r < 0.55:  # area, integer ratio (resizeAreaFast), one axis possibly unchanged
        kx, ky = (int(v) for v in rng.integers(1, 6, 2))
        sw, sh = max(sw // kx, 1) * kx, max(sh // ky, 1) * ky
        dw, dh = sw // kx, sh // ky
    else:  # cubic: at least one axis grows, the other anything
        dw, dh = int(rng.integers(1, 1001)), int(rng.integers(1, 1001))
        if dw <= sw and dh <= sh:
            dw = int(rng.integers(sw + 1, sw + 400))
    if (dw, dh) == (sw, sh):
        dw += 1
    return sw, sh, dw, dh

def run_batch(helper, cases):
    payload = b"".join(struct.pack("<5I", m, *img.shape[1::-1], dw, dh) + img.tobytes() for m, img, dw, dh in cases)
    out = subprocess.run([helper], input=payload, stdout=subprocess.PIPE, check=True).stdout
    res, p = [], 0
    for _, _, dw, dh in cases:
        res.append(np.frombuffer(out[p:p + dw * dh * 3], np.uint8).reshape(dh, dw, 3)); p += dw * dh * 3
    assert p == len(out)
    return res

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("helper"); ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--ipp", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    sizes = FIXED * 3 + [random_case(rng) for _ in range(a.cases)]
    print("cv2", cv2.__version__, "cases", len(sizes))
    worst, n_bad, ipp_bad, ipp_n, batch = 0, 0, 0, 0, []
    def flush():
        nonlocal worst, n_bad, ipp_bad, ipp_n
        for (m, img, dw, dh), got in zip(batch, run_batch(a.helper, batch)):
            interp = cv2.INTER_AREA if m == 0 else cv2.INTER_CUBIC
            cv2.ipp.setUseIPP(m == 0)  # AREA: default settings; CUBIC: OpenCV's own code
            want = cv2.resize(img, (dw, dh), interpolation=interp)
            d = int(np.abs(want.astype(int) - got).max())
            worst = max(worst, d); n_bad += d > 0
            if d:
                print("MISMATCH", "area" if m == 0 else "cubic", img.shape[1::-1], (dw, dh), "max", d,
                      "count", int((want != got).sum()))
            if a.ipp and m == 1:
                cv2.ipp.setUseIPP(True)
                ipp_n += 1; ipp_bad += int(np.any(cv2.resize(img, (dw, dh), interpolation=interp) != got))
        batch.clear()
    for sw, sh, dw, dh in sizes:
        mode = 0 if dw <= sw and dh <= sh else 1
        batch.append((mode, make_image(rng, sw, sh), dw, dh))
        if len(batch) >= 200:
            flush()
    flush()
    print(f"cases {len(sizes)}  mismatching {n_bad}  max abs diff {worst}")
    if a.ipp:
        print(f"INTER_CUBIC vs default (IPP) cv2: {ipp_bad}/{ipp_n} cases differ")
    sys.exit(1 if worst else 0)

if __name__ == "__main__":
    main()
