"""Write a randomly initialised checkpoint of an official DA3 model, for parity tests.

    python make_checkpoint.py --model da3-small --seed 0 --out DIR [--allsky-out DIR2]
        [--tiny-metric-out DIR3] [--official-configs DIR4]

MODEL is an official preset (the network is `depth_anything_3.api.DepthAnything3(model_name=...)`)
or `da3nested-reduced`: `NestedDepthAnything3Net` built by the official classes from the
official `da3nested-giant-large` config with smaller branches (any-view branch = the
da3-small config, metric branch = the da3metric-large config on a ViT-S with da3-small's
head widths), so that CI can run every nested code path. Everything is built under
`torch.manual_seed(seed)`. The official init leaves many parameters constant (pos_embed /
cls_token zero, LayerNorm 1/0, LayerScale gamma = init value); a port that ignored them (or
swapped weight and bias) would still pass, so they are re-randomised here, deterministically
from the seed. Logit layers are rescaled so that depth maps have structure and sky maps are
mixed (see `rerandomise`). Presets are saved with the official `save_pretrained(DIR)`:
`config.json` (model_name) + `model.safetensors`; the reduced model in the same layout
(safetensors' `save_model`, which save_pretrained calls). Every checkpoint also gets
`official_config.json`, the resolved official config the network was built from (the
preset's YAML, or the reduced one): the Rust tests build the reduced model's architecture
from it and check their presets against it.

With a sky head (metric, mono, nested), --allsky-out writes a copy whose sky-logit bias is
raised until a uniform blue image is sky everywhere, as a real model would see it: the
all-sky path (no sky filling; the nested model's alignment assertion) on random weights.
For nested models, --tiny-metric-out writes a copy whose metric branch predicts depths far
below compute_alignment_mask's 1e-2 floor: no pixel qualifies for the alignment, and the
official computes a scale factor of 0 (its degenerate path, which the library mirrors).
--official-configs writes the resolved official config of every preset (PRESET.json), for
the Rust test that compares them with the library's presets.
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_stubs  # noqa: E402

ref_stubs.install()
from depth_anything_3.api import DepthAnything3  # noqa: E402
from depth_anything_3.cfg import create_object, load_config  # noqa: E402
from depth_anything_3.registry import MODEL_REGISTRY  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_model  # noqa: E402

TOKEN_PARAMS = {"cls_token", "pos_embed", "register_tokens", "mask_token"}
LOGIT_GAIN = 40.0
# Sky logits: spatial spread (std) and the fraction of sky pixels (sky >= 0.3) aimed at on the
# sanity input, so that sky masks are mixed and few pixels sit near the thresholds.
SKY_LOGIT_STD = 1.0
SKY_FRACTION = 0.3
SKY_THRESHOLD = 0.3  # utils/alignment.py compute_sky_mask
# The uniform blue of the all-sky cases (RGB), and how far above the threshold its least
# sky value is put in the all-sky checkpoint.
BLUE_RGB = (60, 120, 220)
ALLSKY_MARGIN = 1.0
# Lowering the metric depth logits by this puts every metric depth below 1e-2 (exp(-30) ~ 1e-13).
TINY_METRIC_SHIFT = 30.0
REDUCED_NESTED = "da3nested-reduced"


class Holder(nn.Module):
    """Holds a network as `.model`, as DepthAnything3 does (checkpoint names `model.*`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model


def reduced_nested_config():
    """The official da3nested-giant-large config with small branches (see the module doc)."""
    cfg = load_config(MODEL_REGISTRY["da3nested-giant-large"])
    cfg.anyview = load_config(MODEL_REGISTRY["da3-small"])
    metric = cfg.metric
    metric.net.name = "vits"
    metric.net.out_layers = [2, 5, 8, 11]  # 12 blocks; the large's [4, 11, 17, 23] of 24
    metric.head.dim_in = 384
    metric.head.features = 64
    metric.head.out_channels = [48, 96, 192, 384]
    return OmegaConf.to_container(cfg)


def official_config(model_name: str) -> dict:
    """The resolved official config of a preset (what DepthAnything3 builds), or the reduced one."""
    if model_name == REDUCED_NESTED:
        return reduced_nested_config()
    return OmegaConf.to_container(load_config(MODEL_REGISTRY[model_name]))


def build(model_name: str):
    """The network to save, `.model` being the official network."""
    if model_name == REDUCED_NESTED:
        return Holder(create_object(OmegaConf.create(official_config(model_name)))).eval()
    return DepthAnything3(model_name=model_name).eval()


def networks(api):
    """(checkpoint prefix, DepthAnything3Net) inside: one, or the nested model's two branches."""
    m = api.model
    return [("model.da3", m.da3), ("model.da3_metric", m.da3_metric)] if hasattr(m, "da3_metric") else [("model", m)]


def uniform_input(n, h, w, rgb):
    """(1, n, 3, h, w) ImageNet-normalised image batch of one colour."""
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    img = torch.tensor(rgb, dtype=torch.float32)[:, None, None] / 255.0
    return ((img - mean) / std).expand(3, h, w).expand(1, n, 3, h, w).contiguous()


def sky_logits_of(net, x):
    """The sky logits (before the ReLU) of a DPT network on x (1, n, 3, h, w)."""
    out = []
    hook = net.head.scratch.sky_output_conv2.register_forward_hook(lambda m, i, o: out.append(o.detach().clone()))
    with torch.inference_mode():
        net(x)
    hook.remove()
    return torch.cat(out)


def rerandomise(model: nn.Module, seed: int) -> list[str]:
    """Give every constant parameter a seeded random value; returns their names."""
    g = torch.Generator().manual_seed(seed)
    changed, seen = [], set()
    with torch.no_grad():
        for mod_name, mod in model.named_modules():
            for leaf, p in mod.named_parameters(recurse=False):
                if id(p) in seen:  # shared (the DualDPT aux LayerNorm): once only
                    continue
                seen.add(id(p))
                if p.numel() > 1 and p.std() > 0:
                    continue  # already random from the official init
                n = lambda: torch.randn(p.shape, generator=g)  # noqa: E731
                if isinstance(mod, nn.LayerNorm):
                    p.copy_(1 + 0.1 * n() if leaf == "weight" else 0.05 * n())
                elif leaf == "gamma":  # LayerScale: keep its scale (1 or 0.01), vary it
                    p.mul_(0.5 + 0.5 * torch.rand(p.shape, generator=g))
                elif leaf in TOKEN_PARAMS:
                    p.copy_(0.02 * n())
                elif leaf == "bias":
                    p.copy_(0.05 * n())
                else:
                    raise RuntimeError(f"constant parameter with no rule: {mod_name}.{leaf}")
                changed.append(f"{mod_name}.{leaf}")
        for prefix, net in networks(model):
            # The camera decoder's fov goes through a ReLU; a fov of 0 makes the focal length
            # (W/2)/clamp(tan(0), 1e-6) ~ 1e8: keep the fov positive (~0.9 rad), intrinsics sane.
            if net.cam_dec is not None:
                fov = net.cam_dec.fc_fov[0].bias
                fov.copy_(0.9 + 0.1 * torch.randn(fov.shape, generator=g))
                changed.append(f"{prefix}.cam_dec.fc_fov.0.bias")
            # PyTorch's default conv init shrinks the signal ~sqrt(3)x per layer, so the depth
            # logits come out nearly constant (spatial std ~0.007): a depth map without
            # structure tests little. Amplify the last 1x1 conv (depth + confidence logits).
            net.head.scratch.output_conv2[-1].weight.mul_(LOGIT_GAIN)
            # The sky logits are as flat: spread them (std SKY_LOGIT_STD) and centre them so that
            # about SKY_FRACTION of the pixels are sky (relu(logit) >= 0.3) on the sanity input.
            if hasattr(net.head.scratch, "sky_output_conv2"):
                last = net.head.scratch.sky_output_conv2[-1]
                logits = sky_logits_of(net, smooth_input(3, 126, 182, 1234))
                gain = SKY_LOGIT_STD / logits.std()
                last.weight.mul_(gain)
                last.bias.mul_(gain)
                shift = SKY_THRESHOLD - torch.quantile(logits.flatten() * gain, 1 - SKY_FRACTION)
                last.bias.add_(shift)
                changed.append(f"{prefix}.head.scratch.sky_output_conv2.2 (gain {gain:.4g}, shift {shift:.4g})")
    return changed


def smooth_input(n, h, w, seed):
    """A smooth random image batch (1, n, 3, h, w), roughly ImageNet-normalised."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 4, 6, generator=g)
    x = nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.1 * torch.randn(n, 3, h, w, generator=g))[None]


def sanity_check(api):
    """Depth and confidence must be finite, unsaturated and not constant; sky maps mixed."""
    x = smooth_input(3, 126, 182, 1234)
    for prefix, net in networks(api):
        print(f" {prefix}:")
        logits, sky_logits = [], []
        hooks = [net.head.scratch.output_conv2.register_forward_hook(lambda m, i, o: logits.append(o.detach().clone()))]
        if hasattr(net.head.scratch, "sky_output_conv2"):
            hooks.append(net.head.scratch.sky_output_conv2.register_forward_hook(
                lambda m, i, o: sky_logits.append(o.detach().clone())))
        with torch.inference_mode():
            out = net(x, None, None, export_feat_layers=[])
        for h in hooks:
            h.remove()
        for key in ("depth", "depth_conf", "extrinsics", "intrinsics", "sky"):
            if key not in out:
                continue
            t = out[key].float()
            print(f"  {key:11s} shape={tuple(t.shape)} mean={t.mean():.4g} std={t.std():.4g} "
                  f"min={t.min():.4g} max={t.max():.4g}")
            assert torch.isfinite(t).all(), f"{key} is not finite"
        logits = torch.cat(logits)
        print(f"  logits      min={logits.min():.4g} max={logits.max():.4g}")
        assert logits.abs().max() < 20, "depth/conf logits saturate exp()"
        assert out["depth"].std() > 0.05 * out["depth"].mean(), "depth map is (nearly) constant"
        if sky_logits:
            sky_logits = torch.cat(sky_logits)
            sky_fraction = (sky_logits.relu() >= SKY_THRESHOLD).float().mean()
            print(f"  sky logits  min={sky_logits.min():.4g} max={sky_logits.max():.4g} "
                  f"sky fraction={sky_fraction:.3f}")
            assert 0.1 < sky_fraction < 0.9, "sky map is not mixed"


def save(api, model_name: str, out: str):
    """save_pretrained for presets; the same file layout (and save function) for the reduced model."""
    if model_name == REDUCED_NESTED:
        os.makedirs(out, exist_ok=True)
        save_model(api, os.path.join(out, "model.safetensors"))  # what save_pretrained calls
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump({"model_name": model_name}, f)
    else:
        api.save_pretrained(out)
    with open(os.path.join(out, "official_config.json"), "w") as f:
        json.dump(official_config(model_name), f, indent=1)


def make_allsky(api, model_name: str, out: str):
    """A copy whose sky bias makes a uniform blue image sky everywhere (see the module doc)."""
    (net,) = [n for _, n in networks(api) if hasattr(n.head.scratch, "sky_output_conv2")]
    least = min(sky_logits_of(net, uniform_input(1, h, w, BLUE_RGB)).min()
                for h, w in [(140, 196), (196, 140), (70, 84)])
    shift = max(0.0, float(SKY_THRESHOLD + ALLSKY_MARGIN - least))
    bias = net.head.scratch.sky_output_conv2[-1].bias
    with torch.no_grad():
        bias.add_(shift)
        save(api, model_name, out)
        bias.sub_(shift)
    print(f"wrote {out}: sky bias raised by {shift:.4g} (least blue-image sky logit was {least:.4g})")


def make_tiny_metric(api, model_name: str, out: str):
    """A nested copy whose metric depth is exp(-30) times smaller (see the module doc)."""
    bias = api.model.da3_metric.head.scratch.output_conv2[-1].bias
    with torch.no_grad():
        bias.sub_(TINY_METRIC_SHIFT)
        save(api, model_name, out)
        bias.add_(TINY_METRIC_SHIFT)
    print(f"wrote {out}: metric depth logits lowered by {TINY_METRIC_SHIFT}")


def write_official_configs(out: str):
    os.makedirs(out, exist_ok=True)
    for name in MODEL_REGISTRY:
        with open(os.path.join(out, f"{name}.json"), "w") as f:
            json.dump(official_config(name), f, indent=1)
    print(f"wrote {len(MODEL_REGISTRY)} official configs to {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help=f"official preset (da3-small, ...) or {REDUCED_NESTED}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out")
    ap.add_argument("--allsky-out", help="also write the all-sky variant here (models with a sky head)")
    ap.add_argument("--tiny-metric-out", help="also write the tiny-metric variant here (nested models)")
    ap.add_argument("--official-configs", help="write every preset's official config here")
    args = ap.parse_args()
    if args.official_configs:
        write_official_configs(args.official_configs)
    if not args.model:
        return
    assert args.out, "--out is required with --model"

    t0 = time.time()
    torch.manual_seed(args.seed)
    api = build(args.model)
    changed = rerandomise(api, args.seed)
    print(f"{args.model}: re-randomised {len(changed)} constant parameters; {changed[-1]}")
    sanity_check(api)

    save(api, args.model, args.out)
    path = os.path.join(args.out, "model.safetensors")
    with safe_open(path, "pt") as f:
        saved = set(f.keys())
    state = api.state_dict()
    # safetensors' save_model keeps one name per shared storage and drops the others.
    dropped = sorted(set(state) - saved)
    ptrs = {state[k].data_ptr(): k for k in saved}
    for k in dropped:
        print(f"  shared tensor: {k} -> saved as {ptrs[state[k].data_ptr()]}")
    assert saved <= set(state)
    n_params = sum(p.numel() for p in api.parameters())
    print(f"wrote {path}: {len(saved)} tensors ({len(state)} state_dict names, "
          f"{len(dropped)} shared names dropped), {n_params:,} parameters, "
          f"{time.time() - t0:.1f}s")
    if args.allsky_out:
        shutil.rmtree(args.allsky_out, ignore_errors=True)
        if any(hasattr(n.head.scratch, "sky_output_conv2") for _, n in networks(api)):
            make_allsky(api, args.model, args.allsky_out)
    if args.tiny_metric_out:
        shutil.rmtree(args.tiny_metric_out, ignore_errors=True)
        if hasattr(api.model, "da3_metric"):
            make_tiny_metric(api, args.model, args.tiny_metric_out)


if __name__ == "__main__":
    main()
