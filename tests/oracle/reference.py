"""Run the official DA3 network on a list of cases and save what a port must reproduce.

    python reference.py --checkpoint DIR --cases CASES.json --out OUTDIR
        [--images DIR] [--only NAME ...]

The checkpoint is loaded the official way (`DepthAnything3.from_pretrained(DIR)`, offline;
the reduced nested test model is rebuilt by the official classes from the official config
stored in its official_config.json), in fp32 on CPU, and the network `api.model` is called directly
under inference_mode: `DepthAnything3.forward` would autocast to fp16/bf16, which a parity
test must not see.

Random sampling in the official forward. `model/da3.py` estimates three quantiles from a
random sample when there are more than 100 000 candidate pixels: the sky-filling depth of
`_process_mono_sky_estimation` and `_handle_sky_regions` (`torch.randint`, with replacement)
and the nested model's median confidence (`sample_tensor_for_quantile`, `torch.randperm`).
The library uses exact quantiles instead. So every case is run with that sampling lifted
(the "sample" is every pixel, in order: the official code computing exact quantiles), which
gives the main reference; when a case has more than 100 000 candidates (the official output
is then random), it is run again as is, under `torch.manual_seed(SAMPLING_SEED)`, and the
outputs that depend on the sample are saved with the prefix `sampled_`, together with the
sampled statistics, so that a test can show the difference is only the sample.

CASES.json is a JSON list of objects. Common keys:
  name               output file stem (OUTDIR/<name>.safetensors)            required
  kind               "model" or "pipeline"                                   required
  ref_view_strategy  "first" | "middle" | "saddle_balanced" | "saddle_sim_range"
                     (default "saddle_balanced"; only used with >= 3 views)
  checkpoint         variant: use DIR_<variant> instead of DIR (e.g. "allsky", written by
                     make_checkpoint.py --allsky-out)
kind "model": the network input is synthesised from a seed (image-like: shapes, edges,
gradients; views are overlapping shifted crops of one canvas), ImageNet-normalised.
  views, height, width   N and the input size (multiples of 14)              required
  seed                   int                                                 required
  fill_rgb               [r, g, b]: a uniform image of this colour instead (seed unused)
kind "pipeline": the input is the official InputProcessor's output for image files.
  images              list of paths: "@gen/NAME" -> the --images directory,
                      "@assets/NAME" -> <repo>/assets/images/NAME, other relative paths
                      -> the directory of CASES.json                         required
  process_res         int (default 504)
  process_res_method  "upper_bound_resize" (default) | "upper_bound_crop" |
                      "lower_bound_resize" | "lower_bound_crop"

Each OUTDIR/<name>.safetensors holds (N views, batch dimension squeezed; C = feature width);
keys only where the model has them:
  input            f32 (N,3,H,W)   network input
  depth            f32 (N,H,W)     final depth (nested: metres)
  depth_conf       f32 (N,H,W)     any-view, nested
  extrinsics       f32 (N,3,4)     intrinsics f32 (N,3,3)     any-view, nested
  sky              f32 (N,H,W)     sky map after ReLU (DPT models; nested: its metric branch)
  is_metric        i64 [1]         the official output's is_metric (0 when absent)
  feat_0..feat_3   f32 (N,P,C)     backbone outputs handed to the head (normalised tokens)
  cam_token_0..3   f32 (N,C)       token 0 of the same four layers (camera or class token)
  head_logits      f32 (N,K,H,W)   head.scratch.output_conv2 output, pre-activation
  sky_logits       f32 (N,1,H,W)   head.scratch.sky_output_conv2 output, pre-ReLU (DPT)
  sky_fill_depth   f32 [1]         depth given to sky pixels (DPT: mono sky estimation;
                                   nested: _handle_sky_regions), when filled
  ref_view         i64 [1]         reference view chosen by select_reference_view, -1 if none
  processed_hw     i64 [2]         (pipeline cases only) H, W after preprocessing
nested models also (the any-view branch is unprefixed above, the metric branch has metric_):
  metric_feat_i, metric_cam_token_i, metric_head_logits, metric_sky_logits,
  metric_depth_raw f32 (N,H,W)     the metric branch's depth (after its own sky filling)
  metric_sky_fill_depth f32 [1]    its fill value, when filled
  metric_depth     f32 (N,H,W)     after apply_metric_scaling (metres)
  unaligned_depth, unaligned_depth_conf, unaligned_extrinsics: the any-view branch's outputs
  median_conf f32 [1], alignment_pixels i64 [1], scale_factor f32 [1]
sampled_<key> for the outputs and statistics of the as-is run (see above).
The case itself is in the file's metadata ("case"), with "sampled" ("0"/"1"),
"sampling_seed", and "official_error" when the official forward raised (e.g. the nested
model's assertion on an all-sky scene; the final outputs are then absent).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("DA3_LOG_LEVEL", "ERROR")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory, never the Hub

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import ref_stubs  # noqa: E402

ref_stubs.install()
import depth_anything_3.model.da3 as da3mod  # noqa: E402
import depth_anything_3.model.dinov2.vision_transformer as vit  # noqa: E402
from depth_anything_3.api import DepthAnything3  # noqa: E402
from depth_anything_3.cfg import create_object  # noqa: E402
from depth_anything_3.registry import MODEL_REGISTRY  # noqa: E402
from depth_anything_3.utils.io.input_processor import InputProcessor  # noqa: E402
from make_checkpoint import Holder, networks, uniform_input  # noqa: E402
from make_test_images import synth  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from safetensors.torch import load_file, load_model, save_file  # noqa: E402
import cv2  # noqa: E402

# x86-64 OpenCV wheels hand 8-bit INTER_CUBIC resizes to Intel IPP, whose closed kernel
# differs from OpenCV's own algorithm by +-1 on a few per cent of pixels and even between
# CPU generations. The reference uses OpenCV's own algorithm, which the library reproduces
# exactly (src/preprocess/cv_resize.rs); INTER_AREA never goes to IPP.
cv2.ipp.setUseIPP(False)

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Global seed of the as-is (sampling) runs.
SAMPLING_SEED = 0
# Outputs and statistics that depend on the official sampling.
SAMPLED_KEYS = ("depth", "depth_conf", "extrinsics", "scale_factor", "median_conf", "alignment_pixels",
                "sky_fill_depth", "metric_sky_fill_depth")


def load_api(checkpoint: str):
    with open(os.path.join(checkpoint, "config.json")) as f:
        model_name = json.load(f)["model_name"]
    if model_name not in MODEL_REGISTRY:  # the reduced test model: built from its config
        with open(os.path.join(checkpoint, "official_config.json")) as f:
            config = json.load(f)
        api = Holder(create_object(OmegaConf.create(config))).eval().float()
        load_model(api, os.path.join(checkpoint, "model.safetensors"), strict=True)
    else:
        api = DepthAnything3.from_pretrained(checkpoint).eval().float()
    # from_pretrained loads non-strictly: prove every tensor came from the file.
    saved = load_file(os.path.join(checkpoint, "model.safetensors"))
    state = api.state_dict()
    by_ptr = {state[k].data_ptr(): k for k in saved}
    for k, t in state.items():
        src = k if k in saved else by_ptr.get(t.data_ptr())  # shared names alias a saved one
        assert src is not None and torch.equal(t, saved[src]), f"{k} not loaded from checkpoint"
    return api


def model_input(case: dict) -> torch.Tensor:
    """Views are shifted crops of one synthetic canvas, like a camera moving sideways."""
    if "fill_rgb" in case:
        return uniform_input(case["views"], case["height"], case["width"], case["fill_rgb"])[0]
    n, h, w, seed = case["views"], case["height"], case["width"], case["seed"]
    dx, dy = w // 8, h // 16
    canvas = np.asarray(synth(w + dx * (n - 1), h + dy * (n - 1), seed), dtype=np.float32)
    views = [canvas[i * dy:i * dy + h, i * dx:i * dx + w] / 255.0 for i in range(n)]
    x = (np.stack(views) - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def resolve(path: str, cases_dir: str, images_dir: str | None) -> str:
    if path.startswith("@gen/"):
        assert images_dir, "cases use @gen/ images: pass --images DIR"
        return os.path.join(images_dir, path[len("@gen/"):])
    if path.startswith("@assets/"):
        return os.path.join(REPO, "assets", "images", path[len("@assets/"):])
    return os.path.join(cases_dir, path)


def pipeline_input(case: dict, cases_dir: str, images_dir: str | None) -> torch.Tensor:
    paths = [resolve(p, cases_dir, images_dir) for p in case["images"]]
    imgs, _, _ = InputProcessor()(
        paths, None, None,
        case.get("process_res", 504), case.get("process_res_method", "upper_bound_resize"),
        num_workers=1)
    return imgs  # (N, 3, H, W)


class OfficialSampling:
    """Within `with`: model/da3.py's sampling lifted (exact=True) or left as is, and the
    statistics of its sky filling and alignment recorded (see the module doc)."""

    PATCHED = ("torch", "sample_tensor_for_quantile", "set_sky_regions_to_max_depth",
               "compute_alignment_mask", "least_squares_scale_scalar", "apply_metric_scaling")

    def __init__(self, exact: bool):
        self.exact = exact
        self.sampled = False  # whether the official would have sampled
        self.stats = {}

    def __enter__(self):
        self.saved = {n: getattr(da3mod, n) for n in self.PATCHED}
        spy, saved = self, self.saved

        class TorchShim:
            """model/da3.py's `torch`, with randint giving every index when exact."""

            def __getattr__(self, name):
                return getattr(torch, name)

            @staticmethod
            def randint(low, high, size, device=None):
                spy.sampled = True
                if spy.exact:
                    return torch.arange(low, high, device=device)
                return torch.randint(low, high, size, device=device)

        def sample(t, max_samples=100000):
            spy.sampled |= t.numel() > max_samples
            return t if spy.exact else saved["sample_tensor_for_quantile"](t, max_samples=max_samples)

        def fill(depth, depth_conf, non_sky_mask, max_depth=200.0):
            # Without confidence: a DPT network's own sky estimation; with: the nested one.
            key = "mono_fill" if depth_conf is None else "sky_fill_depth"
            spy.stats[key] = torch.as_tensor(max_depth, dtype=torch.float32).reshape(1).clone()
            return saved["set_sky_regions_to_max_depth"](depth, depth_conf, non_sky_mask, max_depth=max_depth)

        def align_mask(depth_conf, non_sky_mask, depth, metric_depth, median_conf, *a, **k):
            mask = saved["compute_alignment_mask"](depth_conf, non_sky_mask, depth, metric_depth, median_conf, *a, **k)
            spy.stats["median_conf"] = median_conf.float().reshape(1).clone()
            spy.stats["alignment_pixels"] = mask.sum().long().reshape(1)
            return mask

        def least_squares(a, b, *args, **kw):
            scale = saved["least_squares_scale_scalar"](a, b, *args, **kw)
            spy.stats["scale_factor"] = scale.float().reshape(1).clone()
            return scale

        def metric_scaling(depth, intrinsics, *a, **k):
            out = saved["apply_metric_scaling"](depth, intrinsics, *a, **k)
            spy.stats["metric_depth"] = out[0].clone()
            return out

        da3mod.torch = TorchShim()
        da3mod.sample_tensor_for_quantile = sample
        da3mod.set_sky_regions_to_max_depth = fill
        da3mod.compute_alignment_mask = align_mask
        da3mod.least_squares_scale_scalar = least_squares
        da3mod.apply_metric_scaling = metric_scaling
        return self

    def __exit__(self, *exc):
        for n, v in self.saved.items():
            setattr(da3mod, n, v)
        return False


def run_network(api, x: torch.Tensor, strategy: str, exact: bool, seed: int = SAMPLING_SEED):
    """One forward of api.model on x (N,3,H,W), capturing intermediates with hooks.
    Returns (tensors, sampled, official_error)."""
    res = {"input": x}
    hooks, captured = [], {}
    nested = len(networks(api)) == 2
    for prefix, net in networks(api):
        tag = "metric_" if prefix.endswith("da3_metric") else ""
        feats, logits, sky_logits = [], [], []
        captured[tag] = (feats, logits, sky_logits)
        hooks.append(net.backbone.register_forward_hook(lambda m, i, o, feats=feats: feats.append(o[0])))
        # The head runs views in chunks of 8: one hook call per chunk.
        hooks.append(net.head.scratch.output_conv2.register_forward_hook(
            lambda m, i, o, logits=logits: logits.append(o.clone())))
        if hasattr(net.head.scratch, "sky_output_conv2"):
            hooks.append(net.head.scratch.sky_output_conv2.register_forward_hook(
                lambda m, i, o, sky_logits=sky_logits: sky_logits.append(o.clone())))
    branch_outputs = {}
    if nested:
        # Each branch's output as it leaves the branch (the nested forward then edits it in place).
        for name in ("da3", "da3_metric"):
            hooks.append(getattr(api.model, name).register_forward_hook(
                lambda m, i, o, name=name: branch_outputs.__setitem__(
                    name, {k: v.clone() for k, v in o.items() if isinstance(v, torch.Tensor)})))
    picks = []
    select = vit.select_reference_view  # imported into vit's namespace: patch it there

    def spy_select(tokens, strategy="saddle_balanced"):
        picks.append(select(tokens, strategy=strategy))
        return picks[-1]

    vit.select_reference_view = spy_select
    error = None
    torch.manual_seed(seed)
    try:
        with torch.inference_mode(), OfficialSampling(exact) as sampling:
            try:
                out = api.model(x[None], extrinsics=None, intrinsics=None,
                                export_feat_layers=[], ref_view_strategy=strategy)
            except AssertionError as e:  # the nested model on an all-sky scene
                out, error = None, str(e) or "AssertionError"
    finally:
        vit.select_reference_view = select
        for h in hooks:
            h.remove()
    assert len(picks) <= 1
    if out is not None:
        for k in ("depth", "depth_conf", "extrinsics", "intrinsics", "sky"):
            if k in out:
                res[k] = out[k][0]
        res["is_metric"] = torch.tensor([1 if out.get("is_metric") == 1 else 0])
    for tag, (feats, logits, sky_logits) in captured.items():
        assert len(feats) == 1
        for i, (tokens, cam) in enumerate(feats[0]):
            res[f"{tag}feat_{i}"], res[f"{tag}cam_token_{i}"] = tokens[0], cam[0]
        res[f"{tag}head_logits"] = torch.cat(logits)
        if sky_logits:
            res[f"{tag}sky_logits"] = torch.cat(sky_logits)
    stats = dict(sampling.stats)
    mono_fill = stats.pop("mono_fill", None)
    if mono_fill is not None:
        stats["metric_sky_fill_depth" if nested else "sky_fill_depth"] = mono_fill
    res.update(stats)
    if nested:
        anyview, metric = branch_outputs["da3"], branch_outputs["da3_metric"]
        res["unaligned_depth"] = anyview["depth"][0]
        res["unaligned_depth_conf"] = anyview["depth_conf"][0]
        res["unaligned_extrinsics"] = anyview["extrinsics"][0]
        res["intrinsics"] = anyview["intrinsics"][0]
        res["metric_depth_raw"] = metric["depth"][0]
        res["sky"] = metric["sky"][0]
    res = {k: v.float().contiguous() if v.is_floating_point() else v.contiguous() for k, v in res.items()}
    res["ref_view"] = (picks[0].reshape(1) if picks else torch.tensor([-1])).long()
    return res, sampling.sampled, error


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", help="directory that @gen/ image paths refer to")
    ap.add_argument("--only", nargs="*", help="run only these case names")
    args = ap.parse_args()

    apis = {}

    def api_for(case):
        variant = case.get("checkpoint")
        path = args.checkpoint.rstrip("/") + (f"_{variant}" if variant else "")
        if path not in apis:
            apis[path] = load_api(path)
        return apis[path]

    cases_dir = os.path.dirname(os.path.abspath(args.cases))
    with open(args.cases) as f:
        cases = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    t_all = time.time()
    for case in cases:
        if args.only and case["name"] not in args.only:
            continue
        t0 = time.time()
        if case["kind"] == "model":
            x = model_input(case)
        elif case["kind"] == "pipeline":
            x = pipeline_input(case, cases_dir, args.images)
        else:
            raise ValueError(f"{case['name']}: unknown kind {case['kind']!r}")
        api = api_for(case)
        strategy = case.get("ref_view_strategy", "saddle_balanced")
        res, sampled, error = run_network(api, x, strategy, exact=True)
        meta = {"case": json.dumps(case), "torch": torch.__version__, "sampled": str(int(sampled))}
        if sampled:  # the official output is random: keep the as-is run's too
            as_is, _, as_is_error = run_network(api, x, strategy, exact=False, seed=SAMPLING_SEED)
            assert as_is_error == error
            res.update({f"sampled_{k}": as_is[k] for k in SAMPLED_KEYS if k in as_is})
            meta["sampling_seed"] = str(SAMPLING_SEED)
        if error is not None:
            meta["official_error"] = error
        if case["kind"] == "pipeline":
            res["processed_hw"] = torch.tensor(x.shape[-2:], dtype=torch.long)
        save_file(res, os.path.join(args.out, case["name"] + ".safetensors"), metadata=meta)
        d = res.get("depth", res.get("unaligned_depth"))
        line = (f"{case['name']:24s} input={tuple(x.shape)} ref_view={int(res['ref_view'])} "
                f"depth min/mean/max={d.min():.4g}/{d.mean():.4g}/{d.max():.4g}")
        if "depth_conf" in res:
            line += f" conf mean={res['depth_conf'].mean():.4g}"
        if "sky" in res:
            line += f" sky fraction={(res['sky'] >= 0.3).float().mean():.3f}"
        if "scale_factor" in res:
            line += f" scale={float(res['scale_factor']):.4g}"
        if sampled:
            line += " [official samples: as-is run saved too]"
        if error is not None:
            line += f" [official raised: {error}]"
        print(line + f" {time.time() - t0:.1f}s")
    print(f"done in {time.time() - t_all:.1f}s")


if __name__ == "__main__":
    main()
