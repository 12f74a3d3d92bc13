"""Write deterministic synthetic test images for the preprocessing parity tests.

    python make_test_images.py --out DIR

Sizes and modes are chosen to reach every path of the official InputProcessor:
shrink (cv2 INTER_AREA) and enlarge (INTER_CUBIC), rounding to a multiple of 14 both
up and down, centre crops, views of different sizes (cropped to the smallest), and
PIL's `.convert("RGB")` from RGBA, grayscale and a JPEG.
"""
import argparse
import os

import numpy as np
from PIL import Image, ImageDraw

# name -> (width, height, PIL mode, seed)
IMAGES = {
    "rgb_640x480.png": (640, 480, "RGB", 1),    # 4:3, shrinks
    "wide_500x333.png": (500, 333, "RGB", 2),   # 3:2 landscape
    "tall_333x500.png": (333, 500, "RGB", 3),   # 2:3 portrait
    "small_200x150.png": (200, 150, "RGB", 4),  # enlarged at any process_res > 200
    "odd_517x389.png": (517, 389, "RGB", 5),    # odd sizes: rounding to 14 goes up or down
    "rgba_480x360.png": (480, 360, "RGBA", 6),  # alpha is dropped by convert("RGB")
    "gray_360x270.png": (360, 270, "L", 7),     # grayscale, replicated to 3 channels
    "jpeg_600x400.jpg": (600, 400, "RGB", 8),   # lossy: decoders must agree
}


def synth(w: int, h: int, seed: int) -> Image.Image:
    """Image-like RGB content: smooth gradient, textured shapes with hard edges, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    c0, c1, c2 = rng.uniform(0, 255, (3, 3))
    base = c0 + (c1 - c0) * xx[..., None] + (c2 - c0) * yy[..., None]
    base += 20 * np.sin(2 * np.pi * (rng.uniform(2, 6) * xx + rng.uniform(2, 6) * yy))[..., None]
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, x1 = sorted(rng.integers(0, w, 2))
        y0, y1 = sorted(rng.integers(0, h, 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.rectangle([x0, y0, x1, y1], fill=fill)
        elif shape == 1:
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        else:
            pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
            draw.polygon(pts, fill=fill)
    arr = np.asarray(img).astype(np.float64) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, (w, h, mode, seed) in IMAGES.items():
        img = synth(w, h, seed)
        if mode == "RGBA":
            alpha = np.linspace(0, 255, w, dtype=np.float64)[None].repeat(h, 0)
            img.putalpha(Image.fromarray(alpha.astype(np.uint8)))
        elif mode == "L":
            img = img.convert("L")
        path = os.path.join(args.out, name)
        if name.endswith(".jpg"):
            img.save(path, quality=90)
        else:
            img.save(path)
        print(f"wrote {path} ({w}x{h} {mode})")


if __name__ == "__main__":
    main()
