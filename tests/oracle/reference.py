"""Run the official DA3 network on a list of cases and save what a port must reproduce.

    python reference.py --checkpoint DIR --cases CASES.json --out OUTDIR
        [--images DIR] [--only NAME ...]

The checkpoint is loaded the official way (`DepthAnything3.from_pretrained(DIR)`, offline),
in fp32 on CPU, and the network `api.model` is called directly under inference_mode:
`DepthAnything3.forward` would autocast to fp16/bf16, which a parity test must not see.

CASES.json is a JSON list of objects. Common keys:
  name               output file stem (OUTDIR/<name>.safetensors)            required
  kind               "model" or "pipeline"                                   required
  ref_view_strategy  "first" | "middle" | "saddle_balanced" | "saddle_sim_range"
                     (default "saddle_balanced"; only used with >= 3 views)
kind "model": the network input is synthesised from a seed (image-like: shapes, edges,
gradients; views are overlapping shifted crops of one canvas), ImageNet-normalised.
  views, height, width   N and the input size (multiples of 14)              required
  seed                   int                                                 required
kind "pipeline": the input is the official InputProcessor's output for image files.
  images              list of paths: "@gen/NAME" -> the --images directory,
                      "@assets/NAME" -> <repo>/assets/images/NAME, other relative paths
                      -> the directory of CASES.json                         required
  process_res         int (default 504)
  process_res_method  "upper_bound_resize" (default) | "upper_bound_crop" |
                      "lower_bound_resize" | "lower_bound_crop"

Each OUTDIR/<name>.safetensors holds (N views, batch dimension squeezed; C = embed dim):
  input            f32 (N,3,H,W)   network input
  depth            f32 (N,H,W)     depth_conf f32 (N,H,W)
  extrinsics       f32 (N,3,4)     intrinsics f32 (N,3,3)
  feat_0..feat_3   f32 (N,P,2C)    backbone outputs handed to the head (normalised tokens)
  cam_token_0..3   f32 (N,2C)      the camera tokens of the same four layers
  head_logits      f32 (N,2,H,W)   DualDPT main logits (head.scratch.output_conv2), pre-activation
  ref_view         i64 [1]         reference view chosen by select_reference_view, -1 if none
  processed_hw     i64 [2]         (pipeline cases only) H, W after preprocessing
and the case itself as JSON in the file's metadata ("case").
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
import depth_anything_3.model.dinov2.vision_transformer as vit  # noqa: E402
from depth_anything_3.api import DepthAnything3  # noqa: E402
from depth_anything_3.utils.io.input_processor import InputProcessor  # noqa: E402
from make_test_images import synth  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
import cv2  # noqa: E402

# x86-64 OpenCV wheels hand 8-bit INTER_CUBIC resizes to Intel IPP, whose closed kernel
# differs from OpenCV's own algorithm by +-1 on a few per cent of pixels and even between
# CPU generations. The reference uses OpenCV's own algorithm, which the library reproduces
# exactly (src/preprocess/cv_resize.rs); INTER_AREA never goes to IPP.
cv2.ipp.setUseIPP(False)

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_api(checkpoint: str) -> DepthAnything3:
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


def run_network(api: DepthAnything3, x: torch.Tensor, strategy: str) -> dict:
    """One forward of api.model on x (N,3,H,W), capturing intermediates with hooks."""
    feats, logits, picks = [], [], []
    h1 = api.model.backbone.register_forward_hook(lambda m, i, o: feats.append(o[0]))
    # The head runs views in chunks of 8: one hook call per chunk.
    h2 = api.model.head.scratch.output_conv2.register_forward_hook(
        lambda m, i, o: logits.append(o.clone()))
    select = vit.select_reference_view  # imported into vit's namespace: patch it there

    def spy(tokens, strategy="saddle_balanced"):
        picks.append(select(tokens, strategy=strategy))
        return picks[-1]

    vit.select_reference_view = spy
    try:
        with torch.inference_mode():
            out = api.model(x[None], extrinsics=None, intrinsics=None,
                            export_feat_layers=[], ref_view_strategy=strategy)
    finally:
        vit.select_reference_view = select
        h1.remove()
        h2.remove()
    assert len(feats) == 1 and len(picks) <= 1
    res = {"input": x}
    for k in ("depth", "depth_conf", "extrinsics", "intrinsics"):
        res[k] = out[k][0]
    for i, (tokens, cam) in enumerate(feats[0]):
        res[f"feat_{i}"], res[f"cam_token_{i}"] = tokens[0], cam[0]
    res["head_logits"] = torch.cat(logits)
    res = {k: v.float().contiguous() for k, v in res.items()}
    res["ref_view"] = (picks[0].reshape(1) if picks else torch.tensor([-1])).long()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", help="directory that @gen/ image paths refer to")
    ap.add_argument("--only", nargs="*", help="run only these case names")
    args = ap.parse_args()

    torch.manual_seed(0)  # nothing in the forward is random; this is belt and braces
    api = load_api(args.checkpoint)
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
        res = run_network(api, x, case.get("ref_view_strategy", "saddle_balanced"))
        if case["kind"] == "pipeline":
            res["processed_hw"] = torch.tensor(x.shape[-2:], dtype=torch.long)
        save_file(res, os.path.join(args.out, case["name"] + ".safetensors"),
                  metadata={"case": json.dumps(case), "torch": torch.__version__})
        d = res["depth"]
        print(f"{case['name']:24s} input={tuple(x.shape)} ref_view={int(res['ref_view'])} "
              f"depth min/mean/max={d.min():.4g}/{d.mean():.4g}/{d.max():.4g} "
              f"conf mean={res['depth_conf'].mean():.4g} {time.time() - t0:.1f}s")
    print(f"done in {time.time() - t_all:.1f}s")


if __name__ == "__main__":
    main()
