"""JPEG fixtures and what PIL makes of them, for tests/image_files.rs.

Usage: pil_jpeg.py SOURCE_PNG OUT_DIR. Writes OUT_DIR/NAME.jpg (encoded by PIL) and
OUT_DIR/NAME.rgb (PIL's `Image.open(...).convert("RGB")` bytes), and prints one JSON object:
{NAME: {"width", "height", "cuts": [[length, accepted], ...]}} where `accepted` says whether
PIL decodes the file cut to its first `length` bytes; for each accepted cut it writes
OUT_DIR/NAME.cut<length>.rgb.
"""
import io
import json
import sys

from PIL import Image

source, out = sys.argv[1], sys.argv[2]
base = Image.open(source).convert("RGB").crop((40, 30, 136, 110))  # 96 x 80
odd = base.crop((3, 5, 36, 22))  # 33 x 17: partial MCUs on both axes

fixtures = {
    "baseline420": (base, dict(quality=90)),
    "baseline444": (base, dict(quality=95, subsampling=0)),
    "progressive": (base, dict(quality=85, progressive=True)),
    "grey": (base.convert("L"), dict(quality=90)),
    "odd": (odd, dict(quality=80)),
    "restart": (base, dict(quality=90, restart_marker_blocks=1)),
}


def decode(data):
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")


report = {}
for name, (image, params) in fixtures.items():
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **params)
    data = buffer.getvalue()
    with open(f"{out}/{name}.jpg", "wb") as f:
        f.write(data)
    with open(f"{out}/{name}.rgb", "wb") as f:
        f.write(decode(data).tobytes())
    cuts = []
    for length in range(0, len(data)):
        try:
            pixels = decode(data[:length]).tobytes()
        except Exception:  # truncated, broken data stream, or not an image at all
            cuts.append([length, False])
            continue
        cuts.append([length, True])
        with open(f"{out}/{name}.cut{length}.rgb", "wb") as f:
            f.write(pixels)
    report[name] = {"width": image.width, "height": image.height, "cuts": cuts}
print(json.dumps(report))
