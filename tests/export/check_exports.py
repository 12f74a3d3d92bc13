"""Checks the files `examples_c/da3_infer` wrote with --ply --glb --colmap --png16 --pfm --points
--at-input, with readers that share no code with libda3: plyfile (PLY), trimesh (GLB), a COLMAP
text parser written here, numpy (.npy), PIL (16-bit PNG), a PFM reader written here; and the
official package for what the values must be (its GLB/COLMAP point construction
`_depths_to_world_points_with_colors` and its `InputProcessor`).

usage: check_exports.py OUT_DIR --images A.png B.png --res N --method M --conf-percentile P
                        [--input-pixels]
Prints one line per check and "all N checks passed"; exits 1 on the first failure.
"""
import argparse
import os
import sys

import numpy as np

try:  # before the stubs below, which would stand in for a missing pycolmap
    import pycolmap
except ImportError:
    pycolmap = None

# The official package imports its export-only dependencies eagerly; stub the missing ones
# (plyfile and trimesh are installed, so the real ones are used).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "oracle"))
import ref_stubs  # noqa: E402

ref_stubs.install()

CHECKS = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)))
    CHECKS.append(name)
    if not ok:
        sys.exit(1)


def read_pfm(path):
    with open(path, "rb") as f:
        assert f.readline().strip() == b"Pf"
        w, h = map(int, f.readline().split())
        scale = float(f.readline())
        data = np.frombuffer(f.read(), dtype="<f4" if scale < 0 else ">f4")
    return data.reshape(h, w)[::-1]


def parse_colmap(dir_):
    def lines(name):
        with open(os.path.join(dir_, name)) as f:
            return [l.rstrip("\n") for l in f if not l.startswith("#")]

    cams = {}
    for l in lines("cameras.txt"):
        p = l.split()
        cams[int(p[0])] = (p[1], int(p[2]), int(p[3]), np.array(p[4:], dtype=np.float64))
    imgs = {}
    body = lines("images.txt")
    for head, obs in zip(body[0::2], body[1::2]):
        p = head.split()
        o = np.array(obs.split(), dtype=np.float64).reshape(-1, 3)
        imgs[int(p[0])] = (np.array(p[1:5], dtype=np.float64), np.array(p[5:8], dtype=np.float64), int(p[8]), p[9], o)
    pts = {}
    for l in lines("points3D.txt"):
        p = l.split()
        pts[int(p[0])] = (np.array(p[1:4], dtype=np.float64), np.array(p[4:7], dtype=np.uint8), np.array(p[8:], dtype=np.int64))
    return cams, imgs, pts


def quat_to_r(q):
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--images", nargs="+", required=True)
    ap.add_argument("--res", type=int, required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--conf-percentile", type=float, required=True)
    ap.add_argument("--input-pixels", action="store_true")
    a = ap.parse_args()
    out = a.out
    depth = np.load(os.path.join(out, "depth.npy"))
    conf = np.load(os.path.join(out, "conf.npy"))
    ext = np.load(os.path.join(out, "extrinsics.npy"))
    ixt = np.load(os.path.join(out, "intrinsics.npy"))
    n, h, w = depth.shape

    # --- the official's processed images and point construction -------------------------
    from depth_anything_3.utils.io.input_processor import InputProcessor
    from depth_anything_3.utils.export.glb import _depths_to_world_points_with_colors

    tensor, _, _ = InputProcessor()(a.images, process_res=a.res, process_res_method=a.method, num_workers=1)
    imgs = tensor.reshape(n, 3, h, w).permute(0, 2, 3, 1).double().numpy()
    denorm = imgs * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
    rounded = np.clip(np.round(denorm * 255), 0, 255).astype(np.uint8)   # exact bytes
    official_u8 = (np.clip(denorm, 0, 1) * 255).astype(np.uint8)         # the official truncates
    thr = np.percentile(conf, a.conf_percentile) if a.conf_percentile > 0 else -np.inf
    ref_pts, ref_cols = _depths_to_world_points_with_colors(depth, ixt, ext, rounded, conf, thr)

    # --- points.npy: every pixel, the official formula ----------------------------------
    points = np.load(os.path.join(out, "points.npy"))
    check("points.npy shape (N,H,W,3)", points.shape == (n, h, w, 3), points.shape)
    us, vs = np.meshgrid(np.arange(w), np.arange(h))
    pix = np.stack([us, vs, np.ones_like(us)], -1).reshape(-1, 3).T.astype(np.float64)
    worst = 0.0
    for i in range(n):
        e = np.eye(4)
        e[:3] = ext[i]
        xc = np.linalg.inv(ixt[i].astype(np.float64)) @ pix * depth[i].reshape(1, -1)
        xw = (np.linalg.inv(e) @ np.vstack([xc, np.ones((1, xc.shape[1]))]))[:3].T
        worst = max(worst, np.abs(xw - points[i].reshape(-1, 3)).max() / (np.abs(xw).max() + 1e-12))
        # z-depth: the camera-frame z of every point is its depth.
        cam = (e[:3, :3] @ points[i].reshape(-1, 3).T.astype(np.float64) + e[:3, 3:]).T
        check(f"view {i}: camera-frame z of the points is the depth", np.allclose(cam[:, 2], depth[i].reshape(-1), rtol=1e-4, atol=1e-5))
    check("points.npy equals R^T (d K^-1 [u v 1] - t) (relative 1e-5)", worst < 1e-5, worst)

    # --- PLY (plyfile) ------------------------------------------------------------------
    from plyfile import PlyData

    ply = PlyData.read(os.path.join(out, "scene.ply"))
    v = ply["vertex"]
    names = [p.name for p in v.properties]
    check("PLY is binary little-endian", ply.byte_order == "<" and not ply.text, ply.byte_order)
    check("PLY properties x y z red green blue confidence", names == ["x", "y", "z", "red", "green", "blue", "confidence"], names)
    check("PLY property types", [v[k].dtype.str for k in names] == ["<f4"] * 3 + ["|u1"] * 3 + ["<f4"], [v[k].dtype.str for k in names])
    xyz = np.stack([v["x"], v["y"], v["z"]], -1)
    rgb = np.stack([v["red"], v["green"], v["blue"]], -1)
    check("PLY vertex count = the official selection", len(xyz) == len(ref_pts), (len(xyz), len(ref_pts)))
    rel = np.abs(xyz - ref_pts).max() / np.abs(ref_pts).max()
    check("PLY points = the official _depths_to_world_points_with_colors (relative 1e-5)", rel < 1e-5, rel)
    check("PLY colours = the official processed image, rounded", np.array_equal(rgb, ref_cols))
    _, ref_trunc = _depths_to_world_points_with_colors(depth, ixt, ext, official_u8, conf, thr)
    check("PLY colours within 1 level of the official (truncating) processed_images",
          np.abs(rgb.astype(int) - ref_trunc.astype(int)).max() <= 1)
    valid = np.isfinite(depth) & (depth > 0) & (conf >= thr)
    check("PLY confidence = conf of the kept pixels", np.array_equal(v["confidence"], conf[valid]))

    # --- GLB (trimesh) --------------------------------------------------------------------
    import trimesh

    scene = trimesh.load(os.path.join(out, "scene.glb"), force="scene")
    clouds = [g for g in scene.geometry.values() if isinstance(g, trimesh.PointCloud)]
    paths = [g for g in scene.geometry.values() if not isinstance(g, trimesh.PointCloud)]
    check("GLB loads with one point cloud", len(clouds) == 1, list(scene.geometry))
    check("GLB point count", len(clouds[0].vertices) == len(ref_pts), len(clouds[0].vertices))
    check("GLB has one frustum per view", len(paths) == n, len(paths))
    from depth_anything_3.utils.export.glb import _compute_alignment_transform_first_cam_glTF_center_by_points
    A = _compute_alignment_transform_first_cam_glTF_center_by_points(ext[0], ref_pts)
    want = trimesh.transform_points(ref_pts, A)
    got = np.asarray(clouds[0].vertices)
    rel = np.abs(got - want).max() / np.abs(want).max()
    check("GLB points = the official alignment of the official points (relative 1e-4)", rel < 1e-4, rel)
    cols = np.asarray(clouds[0].colors)[:, :3]
    check("GLB colours", np.array_equal(cols, ref_cols))

    # --- COLMAP text (parsed here) ----------------------------------------------------------
    cams, ims, pts = parse_colmap(os.path.join(out, "colmap"))
    check("COLMAP: one camera and image per view", len(cams) == n and len(ims) == n)
    check("COLMAP: point count", len(pts) == len(ref_pts), len(pts))
    k_in = np.load(os.path.join(out, "intrinsics_input.npy")) if a.input_pixels else ixt
    from PIL import Image
    for i in range(n):
        model, cw, ch, params = cams[i + 1]
        size = Image.open(a.images[i]).size if a.input_pixels else (w, h)
        check(f"COLMAP camera {i + 1}: PINHOLE, size {size}", model == "PINHOLE" and (cw, ch) == tuple(size), (model, cw, ch))
        kk = k_in[i]
        check(f"COLMAP camera {i + 1}: fx fy cx cy", np.allclose(params, [kk[0, 0], kk[1, 1], kk[0, 2], kk[1, 2]], rtol=1e-6))
        q, t, cid, name, obs = ims[i + 1]
        check(f"COLMAP image {i + 1}: unit quaternion, camera, name",
              abs(np.linalg.norm(q) - 1) < 1e-6 and q[0] >= 0 and cid == i + 1 and name == os.path.basename(a.images[i]))
        check(f"COLMAP image {i + 1}: rotation and translation = extrinsics",
              np.allclose(quat_to_r(q), ext[i][:, :3], atol=1e-5) and np.allclose(t, ext[i][:, 3], rtol=1e-6, atol=1e-7))
        # Every observation projects its 3D point (within 1e-3 pixels).
        ids = obs[:, 2].astype(np.int64)
        X = np.stack([pts[j][0] for j in ids])
        R, tt = quat_to_r(q), t
        c = (R @ X.T).T + tt
        uv = (kk.astype(np.float64) @ c.T).T
        uv = uv[:, :2] / uv[:, 2:]
        err = np.abs(uv - obs[:, :2]).max()
        check(f"COLMAP image {i + 1}: {len(obs)} observations reproject (max {err:.2e} px)", err < 2e-3, err)
        tracks_ok = all(np.array_equal(pts[j][2], [i + 1, k]) for k, j in enumerate(ids[:2000]))
        check(f"COLMAP image {i + 1}: tracks point back to their observations", tracks_ok)
    xyz_c = np.stack([pts[j + 1][0] for j in range(len(pts))])
    check("COLMAP points3D = the PLY points", np.allclose(xyz_c, xyz, rtol=1e-6, atol=1e-6))
    check("COLMAP colours", np.array_equal(np.stack([pts[j + 1][1] for j in range(len(pts))]), rgb))

    # pycolmap (tests/requirements-tools.txt), when this environment has it.
    if pycolmap is None:
        print("skip pycolmap: not installed in this environment (scripts/setup.sh installs it)")
    else:
        rec = pycolmap.Reconstruction(os.path.join(out, "colmap"))
        check("pycolmap reads the model: cameras, images, points",
              (rec.num_cameras(), rec.num_images(), rec.num_points3D()) == (n, n, len(ref_pts)))
        for i in range(n):
            cam, img = rec.cameras[i + 1], rec.images[i + 1]
            kk = k_in[i]
            check(f"pycolmap camera {i + 1} params", np.allclose(cam.params, [kk[0, 0], kk[1, 1], kk[0, 2], kk[1, 2]], rtol=1e-6))
            m = img.cam_from_world().matrix() if callable(img.cam_from_world) else img.cam_from_world.matrix()
            check(f"pycolmap image {i + 1} cam_from_world = extrinsics", np.allclose(m, ext[i], atol=1e-5))
            check(f"pycolmap image {i + 1} observations", len(img.points2D) == int((valid[i]).sum()))

    # --- depth maps: PFM (parsed here), 16-bit PNG (PIL), .npy at input size ----------------
    for i in range(n):
        pfm = read_pfm(os.path.join(out, f"depth_{i}.pfm"))
        check(f"PFM {i} = depth (bit for bit)", np.array_equal(pfm, depth[i]))
        im16 = Image.open(os.path.join(out, f"depth16_{i}.png"))
        png = np.asarray(im16)
        check(f"PNG16 {i} is 16-bit grey {w}x{h}", im16.mode.startswith("I;16") and png.shape == (h, w), (im16.mode, png.shape))
        scale = 65535.0 / depth[i].max()
        check(f"PNG16 {i} = round(depth * 65535 / max)", np.abs(png.astype(np.float64) - np.round(depth[i].astype(np.float64) * scale)).max() <= 1)
        di = np.load(os.path.join(out, f"depth_input_{i}.npy"))
        iw, ih = Image.open(a.images[i]).size
        check(f"depth at input {i} is {iw}x{ih} float32", di.shape == (ih, iw) and di.dtype == np.float32, di.shape)
        inside = np.isfinite(di)
        check(f"depth at input {i}: values within the processed range", di[inside].min() >= depth[i].min() - 1e-6 and di[inside].max() <= depth[i].max() + 1e-6)
        if a.method.endswith("resize"):
            check(f"depth at input {i}: no NaN after a resize", inside.all())
            # The official's COLMAP export takes processed intrinsics to input pixels by orig / processed.
            k = ixt[i].astype(np.float64).copy()
            k[0] *= iw / w
            k[1] *= ih / h
            kin = np.load(os.path.join(out, "intrinsics_input.npy"))[i]
            check(f"intrinsics at input {i} = the official's orig/processed scaling", np.allclose(kin, k, rtol=1e-5), (kin, k))
        else:
            check(f"depth at input {i}: NaN exactly outside the crop", 0 < inside.sum() < inside.size)
    print(f"all {len(CHECKS)} checks passed")


if __name__ == "__main__":
    main()
