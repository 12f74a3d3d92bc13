"""Run the official DA3 on the pose cases (known cameras, ray-based pose, exported features)
and save what the port must reproduce.

    python reference_pose.py --checkpoint DIR --cases CASES.json --out OUTDIR [--only NAME ...]

Official code paths, in fp32 on the CPU:
  kind "model"     `api.model(x, extrinsics, intrinsics, export_feat_layers, use_ray_pose=...)`,
                   the network with known cameras (normalised by the official
                   `_normalize_extrinsics`) at the network's resolution.
  kind "pipeline"  `api.inference(image_paths, extrinsics, intrinsics, align_to_input_ext_scale,
                   use_ray_pose, export_feat_layers, process_res, process_res_method)`.
`DepthAnything3.forward` autocasts (fp16 on a CPU); the loaded model's class is swapped for a
subclass whose `forward` calls `self.model` under inference_mode without autocast, so
`inference()` runs unchanged around an fp32 network.

Randomness: the alignment RANSAC (10 views and more) draws from `np.random.default_rng(42)`,
the official's own seed; the draws are recorded. The ray-pose RANSAC draws from torch's global
generator, which the official never seeds: torch is seeded with RAY_POSE_SEED right before
`_process_ray_pose_estimation`, the seed the port uses for its own generator. The nested
model's quantiles (model/da3.py samples them above 100 000 pixels) are computed exactly, as in
reference.py.

Nested models run the pipeline cases only: their model-level forward is the any-view branch's,
which the any-view presets' model cases cover.

Case keys (besides name, kind, ref_view_strategy, as in reference.py):
  rig                  {"type": "circle" | "forward", "seed": int}: synthetic cameras
  use_ray_pose         bool (default false)
  export_feat_layers   list of block indices (default [])
kind "model": views, height, width, seed (input as reference.py's model_input).
kind "pipeline": sizes [[w, h], ...] of generated images (seed), process_res,
  process_res_method, align_to_input_ext_scale (default true).
Intrinsics are made for each image size (pixels of the original image), with a little skew.

Saved per case (N views): inputs and outputs named in the case's file (see the keys written
below), and the case as JSON metadata. Also writes OUT/rng_numpy.safetensors: draws of
np.random.default_rng(42).choice(n, k, replace=False), for the port's replica.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("DA3_LOG_LEVEL", "ERROR")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# OpenCV's own cubic kernel, as in reference.py, in every thread: `inference()` preprocesses
# in a thread pool, and cv2.ipp.setUseIPP() only reaches the calling thread.
os.environ["OPENCV_IPP"] = "disabled"

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ref_stubs  # noqa: E402

ref_stubs.install()
import evo  # noqa: E402,F401  (the real package: the official alignment needs it)
import depth_anything_3.api as api_module  # noqa: E402
import depth_anything_3.model.dinov2.vision_transformer as vit  # noqa: E402
import depth_anything_3.utils.pose_align as pose_align  # noqa: E402
from depth_anything_3.api import DepthAnything3  # noqa: E402
from make_test_images import synth  # noqa: E402
from reference import OfficialSampling, load_api, model_input  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
import cv2  # noqa: E402

cv2.ipp.setUseIPP(False)
assert not cv2.ipp.useIPP()
assert not isinstance(evo, ref_stubs._Stub), "evo must be installed (tests/oracle/requirements.txt)"

RAY_POSE_SEED = 42  # src/utils/ray_utils.rs RAY_POSE_SEED


class Fp32DepthAnything3(DepthAnything3):
    """`DepthAnything3` whose forward runs the network as is (no autocast)."""

    @torch.inference_mode()
    def forward(self, image, extrinsics=None, intrinsics=None, export_feat_layers=None,
                infer_gs=False, use_ray_pose=False, ref_view_strategy="saddle_balanced"):
        return self.model(image, extrinsics, intrinsics, export_feat_layers, infer_gs,
                          use_ray_pose, ref_view_strategy)


def look_at(centre, target, up=(0.0, 1.0, 0.0)):
    """World-to-camera 4x4 (OpenCV: x right, y down, z forward) looking from centre at target."""
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.asarray(up))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    ext = np.eye(4)
    ext[:3, :3] = r
    ext[:3, 3] = -r @ centre
    return ext


def rig_extrinsics(rig: dict, n: int) -> np.ndarray:
    """(N, 4, 4) float32 world-to-camera of a synthetic rig, in arbitrary world units."""
    rng = np.random.default_rng(rig["seed"])
    if rig["type"] == "circle":
        # Cameras on a wobbly circle around the origin, looking at points near it.
        exts = []
        for i in range(n):
            a = 2 * np.pi * i / n + rng.uniform(-0.1, 0.1)
            radius = 4.0 * (1 + rng.uniform(-0.1, 0.1))
            centre = np.array([radius * np.cos(a), rng.uniform(-0.6, 0.6), radius * np.sin(a)])
            exts.append(look_at(centre, rng.uniform(-0.3, 0.3, 3)))
    elif rig["type"] == "forward":
        # A camera moving forward along a gently curving path, looking ahead.
        exts = []
        for i in range(n):
            s = 0.6 * i
            centre = np.array([0.8 * np.sin(0.35 * s), 0.15 * np.cos(0.5 * s), s]) + rng.normal(0, 0.02, 3)
            ahead = np.array([0.8 * np.sin(0.35 * (s + 2)), 0.0, s + 2.0])
            exts.append(look_at(centre, ahead + rng.normal(0, 0.1, 3)))
    else:
        raise ValueError(f"unknown rig {rig['type']!r}")
    # World units and origin the caller might use: scaled and shifted.
    exts = np.stack(exts)
    scale, shift = 2.5, np.array([10.0, -3.0, 7.0])
    exts[:, :3, 3] = exts[:, :3, 3] * scale - np.einsum("nij,j->ni", exts[:, :3, :3], shift)
    return exts.astype(np.float32)


def rig_intrinsics(sizes, seed: int) -> np.ndarray:
    """(N, 3, 3) float32 pinhole intrinsics for images of the given (w, h) sizes."""
    rng = np.random.default_rng(seed + 1000)
    ks = []
    for w, h in sizes:
        fx = 0.9 * w * (1 + rng.uniform(-0.1, 0.1))
        fy = fx * (1 + rng.uniform(-0.03, 0.03))
        k = np.array([[fx, rng.uniform(-0.5, 0.5), w / 2 + rng.uniform(-0.03, 0.03) * w],
                      [0.0, fy, h / 2 + rng.uniform(-0.03, 0.03) * h],
                      [0.0, 0.0, 1.0]])
        ks.append(k)
    return np.stack(ks).astype(np.float32)


class Spy:
    """Wraps api / model methods to record what the official computes in between."""

    def __init__(self, api):
        self.api, self.rec, self.undo = api, {}, []
        # The network that takes and predicts cameras: the model, or the nested model's any-view branch.
        self.any_view = getattr(api.model, "da3", api.model)

    def wrap(self, owner, name, make):
        orig = getattr(owner, name)
        setattr(owner, name, make(orig))
        self.undo.append((owner, name, orig))

    def __enter__(self):
        api, rec = self.api, self.rec

        def preprocess(orig):
            def f(*a, **k):
                imgs, ext, ixt = orig(*a, **k)
                rec["input"], rec["given_extrinsics"], rec["processed_intrinsics"] = imgs, ext, ixt
                return imgs, ext, ixt
            return f

        def normalize(orig):
            def f(ex_t):
                out = orig(ex_t)
                if out is not None:
                    rec["normalized_extrinsics"] = out[0].clone()
                return out
            return f

        def convert(orig):
            def f(raw):
                pred = orig(raw)
                rec["predicted_extrinsics"] = np.array(pred.extrinsics, copy=True)
                rec["predicted_intrinsics"] = np.array(pred.intrinsics, copy=True)
                return pred
            return f

        def align(orig):
            def f(*a, **k):
                out = orig(*a, **k)
                rec["alignment"] = out
                return out
            return f

        def ray_pose(orig):
            def f(output, height, width):
                if "ray" in output:
                    rec["ray"], rec["ray_conf"] = output.ray[0].clone(), output.ray_conf[0].clone()
                torch.manual_seed(RAY_POSE_SEED)
                return orig(output, height, width)
            return f

        draws = rec.setdefault("ransac_draws", [])
        default_rng = np.random.default_rng

        class RecordingRng:
            def __init__(self, seed):
                self.g = default_rng(seed)

            def choice(self, *a, **k):
                r = self.g.choice(*a, **k)
                draws.append(np.array(r, copy=True))
                return r

        def cam_enc_hook(m, i, o):
            rec["camera_encoding"] = o[0].clone()

        def select_reference(orig):
            def f(tokens, strategy="saddle_balanced"):
                rec["ref_view"] = orig(tokens, strategy=strategy)
                return rec["ref_view"]
            return f

        self.wrap(api, "_preprocess_inputs", preprocess)
        self.wrap(api, "_normalize_extrinsics", normalize)
        self.wrap(api, "_convert_to_prediction", convert)
        self.wrap(api_module, "align_poses_umeyama", align)
        self.wrap(self.any_view, "_process_ray_pose_estimation", ray_pose)
        self.wrap(pose_align.np.random, "default_rng", lambda orig: RecordingRng)
        self.wrap(vit, "select_reference_view", select_reference)
        self.hook = self.any_view.cam_enc.register_forward_hook(cam_enc_hook)
        return rec

    def __exit__(self, *exc):
        self.hook.remove()
        for owner, name, orig in reversed(self.undo):
            if owner is self.any_view or owner is self.api:
                delattr(owner, name)  # instance attribute shadowing the method
            else:
                setattr(owner, name, orig)
        assert getattr(self.api, "_preprocess_inputs").__func__ is DepthAnything3._preprocess_inputs


def run_model_case(api, case) -> dict:
    x = model_input(case)
    n, h, w = case["views"], case["height"], case["width"]
    res = {"input": x}
    ext = ixt = None
    if "rig" in case:
        raw = torch.from_numpy(rig_extrinsics(case["rig"], n))
        ext = api._normalize_extrinsics(raw[None].clone())
        ixt = torch.from_numpy(rig_intrinsics([(w, h)] * n, case["rig"]["seed"]))[None]
        res.update(raw_extrinsics=raw, extrinsics_in=ext[0], intrinsics_in=ixt[0])
    feats, logits = [], []
    h1 = api.model.backbone.register_forward_hook(lambda m, i, o: feats.append(o))
    h2 = api.model.head.scratch.output_conv2.register_forward_hook(lambda m, i, o: logits.append(o.clone()))
    layers = case.get("export_feat_layers", [])
    try:
        with Spy(api) as rec, torch.inference_mode():
            out = api.model(x[None], ext, ixt, export_feat_layers=layers,
                            use_ray_pose=case.get("use_ray_pose", False),
                            ref_view_strategy=case.get("ref_view_strategy", "saddle_balanced"))
    finally:
        h1.remove()
        h2.remove()
    for k in ("depth", "depth_conf", "extrinsics", "intrinsics"):
        res[k] = out[k][0]
    (main, _aux) = feats[0]
    for i, (tokens, cam) in enumerate(main):
        res[f"feat_{i}"], res[f"cam_token_{i}"] = tokens[0], cam[0]
    res["head_logits"] = torch.cat(logits)
    for k in ("camera_encoding", "ray", "ray_conf"):
        if k in rec:
            res[k] = rec[k]
    for layer in layers:
        res[f"feat_layer_{layer}"] = out.aux[f"feat_layer_{layer}"][0]
    res = {k: v.float().contiguous() for k, v in res.items()}
    res["ref_view"] = reference_view(rec)
    return res


def reference_view(rec) -> torch.Tensor:
    """The reference view the official chose, -1 when it chose none."""
    return (rec["ref_view"].reshape(1) if "ref_view" in rec else torch.tensor([-1])).long()


def run_pipeline_case(api, case, image_dir) -> dict:
    sizes = case["sizes"]
    paths = []
    for i, (w, h) in enumerate(sizes):
        path = os.path.join(image_dir, f"{case['name']}_{i}.png")
        synth(w, h, case["seed"] + i).save(path)
        paths.append(path)
    n = len(sizes)
    ext = ixt = None
    if "rig" in case:
        ext = rig_extrinsics(case["rig"], n)
        ixt = rig_intrinsics(sizes, case["rig"]["seed"])
    layers = case.get("export_feat_layers", [])
    # The nested model's quantiles are estimated from a random sample in the official code; the
    # library computes them exactly, so the oracle lifts the sampling as reference.py does (its
    # parity cases also show that the as-is outputs differ by the sample alone).
    with Spy(api) as rec, OfficialSampling(exact=True):
        pred = api.inference(
            paths, extrinsics=ext, intrinsics=ixt,
            align_to_input_ext_scale=case.get("align_to_input_ext_scale", True),
            use_ray_pose=case.get("use_ray_pose", False),
            ref_view_strategy=case.get("ref_view_strategy", "saddle_balanced"),
            process_res=case["process_res"], process_res_method=case["process_res_method"],
            export_feat_layers=layers)
    t = lambda a: torch.tensor(np.asarray(a)).float()  # a copy: outputs may share memory  # noqa: E731
    res = {"input": rec["input"], "processed_hw": torch.tensor(rec["input"].shape[-2:], dtype=torch.long),
           "depth": t(pred.depth), "depth_conf": t(pred.conf),
           "extrinsics": t(pred.extrinsics)[:, :3].contiguous(), "intrinsics": t(pred.intrinsics),
           "predicted_extrinsics": t(rec["predicted_extrinsics"]),
           "predicted_intrinsics": t(rec["predicted_intrinsics"]), "ref_view": reference_view(rec)}
    if ext is not None:
        _, _, scale, _ = rec["alignment"]
        res.update(given_extrinsics=t(ext), given_intrinsics=t(ixt),
                   processed_intrinsics=t(rec["processed_intrinsics"]),
                   normalized_extrinsics=t(rec["normalized_extrinsics"]),
                   camera_encoding=t(rec["camera_encoding"]),
                   alignment_scale=torch.tensor([float(scale)], dtype=torch.float64))
        for i, d in enumerate(rec["ransac_draws"]):
            res[f"ransac_draw_{i}"] = torch.as_tensor(d).long()
    for k in ("ray", "ray_conf"):
        if k in rec:
            res[k] = rec[k].float().contiguous()
    for layer in layers:
        res[f"feat_layer_{layer}"] = t(pred.aux[f"feat_layer_{layer}"])
    return res


def rng_fixture(out_dir):
    """Draws of the numpy generator the official alignment RANSAC uses, for the port's replica:
    one generator per population, 10 draws each (as the RANSAC does), and the tail-shuffle
    branch numpy takes for large populations."""
    res, plan = {}, []
    for n in (10, 11, 12, 16, 25, 99, 20000):
        k = max(3, (n + 1) // 2)
        g = np.random.default_rng(42)
        for it in range(10 if n < 1000 else 1):
            res[f"n{n}_k{k}_{it}"] = torch.as_tensor(g.choice(np.arange(n), size=k, replace=False)).long()
        plan.append([n, k])
    save_file(res, os.path.join(out_dir, "rng_numpy.safetensors"), metadata={"plan": json.dumps(plan)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()

    api = load_api(args.checkpoint)
    if not isinstance(api, DepthAnything3):
        # The reduced nested test model has no preset: put the official API around its network,
        # as DepthAnything3.__init__ does for a preset.
        network = api.model
        api = DepthAnything3.__new__(DepthAnything3)
        torch.nn.Module.__init__(api)
        api.model_name, api.model, api.device = "da3nested-reduced", network, None
        api.input_processor, api.output_processor = api_module.InputProcessor(), api_module.OutputProcessor()
    api.__class__ = Fp32DepthAnything3
    with open(args.cases) as f:
        cases = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    image_dir = os.path.join(args.out, "images")
    os.makedirs(image_dir, exist_ok=True)
    rng_fixture(args.out)
    t_all = time.time()
    for case in cases:
        if args.only and case["name"] not in args.only:
            continue
        if case["kind"] == "model" and hasattr(api.model, "da3"):
            continue  # nested: pipeline cases only (see the module doc)
        t0 = time.time()
        if case["kind"] == "model":
            res = run_model_case(api, case)
        elif case["kind"] == "pipeline":
            res = run_pipeline_case(api, case, image_dir)
        else:
            raise ValueError(f"{case['name']}: unknown kind {case['kind']!r}")
        save_file(res, os.path.join(args.out, case["name"] + ".safetensors"),
                  metadata={"case": json.dumps(case), "torch": torch.__version__})
        scale = res.get("alignment_scale")
        print(f"{case['name']:28s} input={tuple(res['input'].shape)} "
              f"scale={'-' if scale is None else f'{float(scale):.5g}'} "
              f"ransac_draws={sum(k.startswith('ransac_draw') for k in res)} "
              f"depth mean={res['depth'].mean():.4g} {time.time() - t0:.1f}s")
    print(f"done in {time.time() - t_all:.1f}s")


if __name__ == "__main__":
    main()
