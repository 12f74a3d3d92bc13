#!/usr/bin/env python3
"""Writes a Triton model repository entry for one libda3 model (served by libtriton_da3.so).

    triton/make_model_repository.py --preset da3-small --checkpoint DIR --repository REPO
        [--name NAME] [--kind cpu|gpu] [--count N] [--gpus 0,1] [--max-batch-size 8]
        [--queue-delay-us 2000] [--precision auto|fp32|fp16|bf16] [--use-accelerate]
        [--process-res 504] [--resize-method upper_bound_resize] [--ref-view-strategy ...]

Lays out REPO/NAME/config.pbtxt and REPO/NAME/1/ (the version directory, holding links to the
checkpoint's config.json and model.safetensors; with --checkpoint a preset name or hub id
instead of a directory, the version directory stays empty and parameter `model` names it).
The inputs and outputs follow what the preset's network gives (libda3's capabilities):

  any-view (da3-small/-base/-large/-giant): DEPTH, CONFIDENCE, EXTRINSICS, INTRINSICS;
      optional inputs KNOWN_EXTRINSICS, KNOWN_INTRINSICS
  da3metric-large, da3mono-large: DEPTH, SKY
  da3nested-giant-large: DEPTH, CONFIDENCE, SKY, EXTRINSICS, INTRINSICS, SCALE_FACTOR;
      optional known cameras

Standard library only.
"""
import argparse
import os
import sys

ANY_VIEW = ["DEPTH", "CONFIDENCE", "EXTRINSICS", "INTRINSICS"]
PRESETS = {
    "da3-small": (ANY_VIEW, True),
    "da3-base": (ANY_VIEW, True),
    "da3-large": (ANY_VIEW, True),
    "da3-giant": (ANY_VIEW, True),
    "da3metric-large": (["DEPTH", "SKY"], False),
    "da3mono-large": (["DEPTH", "SKY"], False),
    "da3nested-giant-large": (["DEPTH", "CONFIDENCE", "SKY", "EXTRINSICS", "INTRINSICS", "SCALE_FACTOR"], True),
}
# Output dims after the batch (scene) dimension.
OUTPUT_DIMS = {
    "DEPTH": "[ -1, -1, -1 ]",
    "CONFIDENCE": "[ -1, -1, -1 ]",
    "SKY": "[ -1, -1, -1 ]",
    "EXTRINSICS": "[ -1, 3, 4 ]",
    "INTRINSICS": "[ -1, 3, 3 ]",
    "SCALE_FACTOR": "[ 1 ]",
}


def config_text(args, outputs, known_cameras, model_parameter):
    inputs = [
        '  {\n    name: "IMAGES"\n    data_type: TYPE_UINT8\n    dims: [ -1, -1, -1, 3 ]\n'
        "    allow_ragged_batch: true\n  }"
    ]
    if known_cameras:
        for name, dims in (("KNOWN_EXTRINSICS", "[ -1, 4, 4 ]"), ("KNOWN_INTRINSICS", "[ -1, 3, 3 ]")):
            inputs.append(
                f'  {{\n    name: "{name}"\n    data_type: TYPE_FP32\n    dims: {dims}\n'
                "    optional: true\n    allow_ragged_batch: true\n  }"
            )
    outs = [f'  {{\n    name: "{o}"\n    data_type: TYPE_FP32\n    dims: {OUTPUT_DIMS[o]}\n  }}' for o in outputs]
    params = {"precision": args.precision, "use_accelerate": "true" if args.use_accelerate else "false"}
    if model_parameter:
        params["model"] = model_parameter
    for key in ("process_res", "resize_method", "ref_view_strategy"):
        value = getattr(args, key)
        if value is not None:
            params[key] = str(value)
    param_text = "\n".join(
        f'parameters {{\n  key: "{k}"\n  value: {{ string_value: "{v}" }}\n}}' for k, v in params.items()
    )
    if args.kind == "gpu":
        gpus = f"\n    gpus: [ {', '.join(args.gpus.split(','))} ]" if args.gpus else ""
        group = f"instance_group [\n  {{\n    kind: KIND_GPU\n    count: {args.count}{gpus}\n  }}\n]"
    else:
        group = f"instance_group [\n  {{\n    kind: KIND_CPU\n    count: {args.count}\n  }}\n]"
    return (
        f"# libda3 {args.preset}: one request = scenes x views x height x width x 3 (uint8 RGB);\n"
        "# written by triton/make_model_repository.py\n"
        f'name: "{args.name}"\nbackend: "da3"\nmax_batch_size: {args.max_batch_size}\n'
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {args.queue_delay_us}\n}}\n"
        f"input [\n{','.join(inputs)}\n]\noutput [\n{','.join(outs)}\n]\n{group}\n{param_text}\n"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--checkpoint", required=True, help="checkpoint directory, preset name or hub id")
    p.add_argument("--repository", required=True)
    p.add_argument("--name")
    p.add_argument("--kind", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--count", type=int, default=1, help="instances (per GPU with --kind gpu)")
    p.add_argument("--gpus", help="comma-separated GPU ids (default: all)")
    p.add_argument("--max-batch-size", type=int, default=8, help="scenes per execution")
    p.add_argument("--queue-delay-us", type=int, default=2000)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--use-accelerate", action="store_true")
    p.add_argument("--process-res", type=int)
    p.add_argument("--resize-method")
    p.add_argument("--ref-view-strategy")
    args = p.parse_args()
    args.name = args.name or args.preset
    outputs, known_cameras = PRESETS[args.preset]

    model_dir = os.path.join(args.repository, args.name)
    version_dir = os.path.join(model_dir, "1")
    os.makedirs(version_dir, exist_ok=True)
    model_parameter = None
    if os.path.isdir(args.checkpoint):
        checkpoint = os.path.abspath(args.checkpoint)
        for f in ("config.json", "model.safetensors", "official_config.json"):
            src, dst = os.path.join(checkpoint, f), os.path.join(version_dir, f)
            if os.path.exists(src):
                if os.path.lexists(dst):
                    os.remove(dst)
                os.symlink(src, dst)
        if not os.path.exists(os.path.join(version_dir, "model.safetensors")):
            sys.exit(f"{checkpoint} holds no model.safetensors")
    else:
        model_parameter = args.checkpoint
    with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
        f.write(config_text(args, outputs, known_cameras, model_parameter))
    print(os.path.join(model_dir, "config.pbtxt"))


if __name__ == "__main__":
    main()
