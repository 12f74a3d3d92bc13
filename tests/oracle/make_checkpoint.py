"""Write a randomly initialised checkpoint of an official DA3 model, for parity tests.

    python make_checkpoint.py --model da3-small --seed 0 --out DIR

The network is the official `depth_anything_3.api.DepthAnything3(model_name=...)`,
built under `torch.manual_seed(seed)`. The official init leaves many parameters
constant (pos_embed / cls_token zero, LayerNorm 1/0, LayerScale gamma = init value);
a port that ignored them (or swapped weight and bias) would still pass, so they are
re-randomised here, deterministically from the seed. The result is saved with the
official `save_pretrained(DIR)`: `config.json` (model_name) + `model.safetensors`.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_stubs  # noqa: E402

ref_stubs.install()
from depth_anything_3.api import DepthAnything3  # noqa: E402
from safetensors import safe_open  # noqa: E402

TOKEN_PARAMS = {"cls_token", "pos_embed", "register_tokens", "mask_token"}
LOGIT_GAIN = 40.0


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
        # The camera decoder's fov goes through a ReLU; a fov of 0 makes the focal length
        # (W/2)/clamp(tan(0), 1e-6) ~ 1e8: keep the fov positive (~0.9 rad), intrinsics sane.
        fov = getattr(model.model.cam_dec, "fc_fov", None)
        if fov is not None:
            fov[0].bias.copy_(0.9 + 0.1 * torch.randn(fov[0].bias.shape, generator=g))
            changed.append("model.cam_dec.fc_fov.0.bias")
        # PyTorch's default conv init shrinks the signal ~sqrt(3)x per layer, so the depth
        # logits come out nearly constant (spatial std ~0.007): a depth map without
        # structure tests little. Amplify the last 1x1 conv (depth + confidence logits).
        model.model.head.scratch.output_conv2[-1].weight.mul_(LOGIT_GAIN)
    return changed


def smooth_input(n, h, w, seed):
    """A smooth random image batch (1, n, 3, h, w), roughly ImageNet-normalised."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, 4, 6, generator=g)
    x = nn.functional.interpolate(low, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.1 * torch.randn(n, 3, h, w, generator=g))[None]


def sanity_check(api: DepthAnything3):
    """Depth and confidence must be finite, unsaturated and not constant."""
    logits = []
    hook = api.model.head.scratch.output_conv2.register_forward_hook(
        lambda m, i, o: logits.append(o.detach().clone()))
    with torch.inference_mode():
        out = api.model(smooth_input(3, 126, 182, 1234), None, None, export_feat_layers=[])
    hook.remove()
    logits = torch.cat(logits)
    for key in ("depth", "depth_conf", "extrinsics", "intrinsics"):
        t = out[key].float()
        print(f"  {key:11s} shape={tuple(t.shape)} mean={t.mean():.4g} std={t.std():.4g} "
              f"min={t.min():.4g} max={t.max():.4g}")
        assert torch.isfinite(t).all(), f"{key} is not finite"
    print(f"  logits      min={logits.min():.4g} max={logits.max():.4g}")
    assert logits.abs().max() < 20, "depth/conf logits saturate exp()"
    assert out["depth"].std() > 0.05 * out["depth"].mean(), "depth map is (nearly) constant"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", required=True, help="official preset: da3-small, da3-base, ...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    t0 = time.time()
    torch.manual_seed(args.seed)
    api = DepthAnything3(model_name=args.model).eval()
    changed = rerandomise(api, args.seed)
    print(f"{args.model}: re-randomised {len(changed)} constant parameters")
    sanity_check(api)

    api.save_pretrained(args.out)
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


if __name__ == "__main__":
    main()
