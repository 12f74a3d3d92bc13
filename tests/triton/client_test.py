#!/usr/bin/env python3
"""Talks to a running tritonserver that serves libda3 through libtriton_da3.so (started by
tests/triton.rs) and checks it as a client would, printing one line per check:

  ok|FAIL  <what>

and exiting 1 if any check failed. Results are compared bit for bit with libda3's C API called
here through ctypes on the same inputs (same checkpoint, same options, the CPU).

usage: client_test.py --http HOST:PORT --metrics HOST:PORT --model NAME --checkpoint DIR
                      --libda3 PATH --process-res N
"""
import argparse
import concurrent.futures
import ctypes
import sys
import time
import urllib.request

import numpy as np
import tritonclient.http as http
from tritonclient.utils import InferenceServerException

FAILED = []


def check(condition, what):
    print(("ok      " if condition else "FAIL    ") + what, flush=True)
    if not condition:
        FAILED.append(what)
    return condition


# ---- libda3 through its C API (the reference) --------------------------------------------------


class Image(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("stride", ctypes.c_size_t), ("format", ctypes.c_uint32)]


class Options(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("process_res", ctypes.c_uint32),
                ("resize_method", ctypes.c_uint32), ("ref_view_strategy", ctypes.c_uint32),
                ("use_ray_pose", ctypes.c_uint32), ("align_to_input_ext_scale", ctypes.c_uint32),
                ("extrinsics_rows", ctypes.c_uint32), ("export_feat_layer_count", ctypes.c_uint32),
                ("extrinsics", ctypes.c_void_p), ("intrinsics", ctypes.c_void_p),
                ("export_feat_layers", ctypes.c_void_p), ("cancel", ctypes.c_void_p)]


class Reference:
    def __init__(self, libda3, checkpoint, process_res):
        lib = ctypes.CDLL(libda3)
        lib.da3_create.argtypes = [ctypes.c_char_p, ctypes.c_bool, ctypes.c_uint32, ctypes.POINTER(ctypes.c_void_p)]
        lib.da3_infer.argtypes = [ctypes.c_void_p, ctypes.POINTER(Image), ctypes.c_size_t,
                                  ctypes.POINTER(Options), ctypes.POINTER(ctypes.c_void_p)]
        lib.da3_options_default.argtypes = [ctypes.POINTER(Options), ctypes.c_size_t]
        lib.da3_last_error_message.restype = ctypes.c_char_p
        for f in ("da3_result_width", "da3_result_height"):
            getattr(lib, f).restype = ctypes.c_uint32
            getattr(lib, f).argtypes = [ctypes.c_void_p]
        for f in ("da3_result_depth_all", "da3_result_confidence_all"):
            getattr(lib, f).restype = ctypes.POINTER(ctypes.c_float)
            getattr(lib, f).argtypes = [ctypes.c_void_p]
        for f in ("da3_result_extrinsics", "da3_result_intrinsics"):
            getattr(lib, f).argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_float)]
        lib.da3_result_free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.model = ctypes.c_void_p()
        status = lib.da3_create(checkpoint.encode(), False, 0, ctypes.byref(self.model))
        if status != 0:
            sys.exit(f"da3_create: {status} {lib.da3_last_error_message()}")
        self.process_res = process_res

    def infer(self, views, extrinsics=None, intrinsics=None):
        """One scene (views: N x H x W x 3 uint8) -> dict of the outputs, as the server names them."""
        views = np.ascontiguousarray(views)
        n, h, w, _ = views.shape
        images = (Image * n)(*[Image(views[i].ctypes.data, w, h, w * 3, 0) for i in range(n)])
        options = Options()
        assert self.lib.da3_options_default(ctypes.byref(options), ctypes.sizeof(Options)) == 0
        options.process_res = self.process_res
        keep = []
        if extrinsics is not None:
            e = np.ascontiguousarray(extrinsics, np.float32)
            keep.append(e)
            options.extrinsics, options.extrinsics_rows = e.ctypes.data, 4
        if intrinsics is not None:
            k = np.ascontiguousarray(intrinsics, np.float32)
            keep.append(k)
            options.intrinsics = k.ctypes.data
        result = ctypes.c_void_p()
        status = self.lib.da3_infer(self.model, images, n, ctypes.byref(options), ctypes.byref(result))
        assert status == 0, f"da3_infer: {status} {self.lib.da3_last_error_message()}"
        rh, rw = self.lib.da3_result_height(result), self.lib.da3_result_width(result)
        out = {}
        for name, f in (("DEPTH", self.lib.da3_result_depth_all), ("CONFIDENCE", self.lib.da3_result_confidence_all)):
            out[name] = np.ctypeslib.as_array(f(result), (n, rh, rw)).copy()
        for name, f, size, shape in (("EXTRINSICS", self.lib.da3_result_extrinsics, 12, (3, 4)),
                                     ("INTRINSICS", self.lib.da3_result_intrinsics, 9, (3, 3))):
            mats = []
            for v in range(n):
                buf = (ctypes.c_float * size)()
                assert f(result, v, buf) == 0
                mats.append(np.array(buf, np.float32).reshape(shape))
            out[name] = np.stack(mats)
        self.lib.da3_result_free(result)
        return out


# ---- the server --------------------------------------------------------------------------------

OUTPUTS = ("DEPTH", "CONFIDENCE", "EXTRINSICS", "INTRINSICS")


def frames(seed, scenes, views, height, width):
    return np.random.default_rng(seed).integers(0, 256, (scenes, views, height, width, 3), dtype=np.uint8)


def cameras(views, seed):
    """Known cameras looking forward from centres that are not collinear (world-to-camera 4x4;
    libda3 aligns its prediction to them, which needs 3 such centres), a shared pinhole."""
    rng = np.random.default_rng(seed)
    ext = np.tile(np.eye(4, dtype=np.float32), (views, 1, 1))
    ext[:, 0, 3] = -0.3 * np.arange(views) - rng.uniform(0, 0.05, views)
    ext[:, 1, 3] = -0.2 * (np.arange(views) % 2) - rng.uniform(0, 0.05, views)
    ext[:, 2, 3] = rng.uniform(0, 0.05, views)
    k = np.array([[60, 0, 32], [0, 60, 24], [0, 0, 1]], np.float32)
    return ext, np.tile(k, (views, 1, 1))


def request(client, model, images, extrinsics=None, intrinsics=None, images_dtype="UINT8", outputs=None):
    inputs = [http.InferInput("IMAGES", list(images.shape), images_dtype)]
    inputs[0].set_data_from_numpy(images, binary_data=True)
    for name, value in (("KNOWN_EXTRINSICS", extrinsics), ("KNOWN_INTRINSICS", intrinsics)):
        if value is not None:
            t = http.InferInput(name, list(value.shape), "FP32")
            t.set_data_from_numpy(value.astype(np.float32), binary_data=True)
            inputs.append(t)
    wanted = [http.InferRequestedOutput(o, binary_data=True) for o in (outputs or OUTPUTS)]
    result = client.infer(model, inputs, outputs=wanted)
    return {o: result.as_numpy(o) for o in (outputs or OUTPUTS)}


def same_as_reference(got, images, reference, extrinsics=None, intrinsics=None):
    """Every output of every scene bit-identical to libda3's C API."""
    for s in range(images.shape[0]):
        ref = reference.infer(images[s], None if extrinsics is None else extrinsics[s],
                              None if intrinsics is None else intrinsics[s])
        for name, value in got.items():
            if value.shape[0] != images.shape[0] or not np.array_equal(value[s], ref[name]):
                return False, f"{name} of scene {s}: shape {value.shape}"
    return True, ""


def metric(metrics_url, name, model, **labels):
    """Sum of the Prometheus samples of `name` for `model` (and `labels`), None if there is none."""
    text = urllib.request.urlopen(f"http://{metrics_url}/metrics", timeout=10).read().decode()
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name + "{") and f'model="{model}"' in line
              and all(f'{k}="{v}"' in line for k, v in labels.items())]
    return sum(values) if values else None


def main():
    p = argparse.ArgumentParser()
    for a in ("--http", "--metrics", "--model", "--checkpoint", "--libda3"):
        p.add_argument(a, required=True)
    p.add_argument("--process-res", type=int, required=True)
    args = p.parse_args()
    client = http.InferenceServerClient(args.http, connection_timeout=60, network_timeout=300)

    deadline = time.time() + 180
    ready = False
    while time.time() < deadline and not ready:
        try:
            ready = client.is_server_ready() and client.is_model_ready(args.model)
        except Exception:
            pass
        if not ready:
            time.sleep(0.5)
    if not check(ready, "the server and the model become ready (/v2/health/ready, /v2/models/NAME/ready)"):
        return 1
    check(client.is_server_live(), "the server is live (/v2/health/live)")
    ready_code = urllib.request.urlopen(f"http://{args.http}/v2/health/ready", timeout=10).status
    check(ready_code == 200, f"GET /v2/health/ready answers 200 ({ready_code})")
    meta = client.get_model_metadata(args.model)
    check({i["name"] for i in meta["inputs"]} == {"IMAGES", "KNOWN_EXTRINSICS", "KNOWN_INTRINSICS"}
          and {o["name"] for o in meta["outputs"]} == set(OUTPUTS), "model metadata lists the inputs and outputs")

    reference = Reference(args.libda3, args.checkpoint, args.process_res)

    # Single requests: one view, several views, two scenes in one request.
    for seed, shape in ((1, (1, 1, 48, 64)), (2, (1, 3, 60, 80)), (3, (2, 2, 50, 70))):
        images = frames(seed, *shape)
        got = request(client, args.model, images)
        ok, why = same_as_reference(got, images, reference)
        check(ok, f"scenes x views x H x W = {shape}: every output bit-identical to the C API {why}")
    depth_only = request(client, args.model, frames(1, 1, 1, 48, 64), outputs=["DEPTH"])
    check(list(depth_only) == ["DEPTH"] and depth_only["DEPTH"].shape[:2] == (1, 1), "a request for DEPTH alone gets DEPTH alone")

    # Known cameras.
    cam_images = frames(4, 2, 3, 48, 64)
    ext, k = cameras(3, 4)
    ext2, k2 = np.stack([ext, ext]), np.stack([k, k])
    got = request(client, args.model, cam_images, ext2, k2)
    ok, why = same_as_reference(got, cam_images, reference, ext2, k2)
    check(ok, f"two scenes with known cameras: bit-identical to da3_infer with the same cameras {why}")

    # 8 concurrent clients, mixed scene sizes: dynamic batching gathers them (ragged batches).
    shapes = [(1, 1, 48, 64), (1, 2, 60, 80), (1, 1, 70, 50), (2, 1, 40, 40)]
    jobs = [(10 + i, shapes[i % len(shapes)]) for i in range(24)]
    expected = {}
    for seed, shape in jobs:
        images = frames(seed, *shape)
        expected[seed] = (images, [reference.infer(images[s]) for s in range(shape[0])])

    def one(job):
        seed, _ = job
        local = http.InferenceServerClient(args.http, connection_timeout=60, network_timeout=300)
        images, refs = expected[seed]
        got = request(local, args.model, images)
        return all(np.array_equal(got[o][s], refs[s][o]) for o in OUTPUTS for s in range(images.shape[0]))

    before = client.get_inference_statistics(args.model)["model_stats"][0]
    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, jobs))
    elapsed = time.time() - started
    after = client.get_inference_statistics(args.model)["model_stats"][0]
    check(all(results), f"8 concurrent clients, 24 requests of 4 scene sizes: all bit-identical ({sum(results)}/24, {elapsed:.1f} s)")
    executions = after["execution_count"] - before["execution_count"]
    inferences = after["inference_count"] - before["inference_count"]
    print(f"info    24 requests ({inferences} scenes) in {executions} executions")
    check(inferences == sum(s[0] for _, s in jobs), f"statistics count every scene ({inferences})")

    # Bad requests: each fails alone with a message; the server keeps serving.
    good = frames(5, 1, 1, 48, 64)

    def refused(what, expect, **kw):
        try:
            request(client, args.model, **kw)
            check(False, f"{what}: refused")
        except InferenceServerException as e:
            message = str(e)
            check(any(x in message for x in expect), f"{what}: refused with a clear message ({message.strip()[:160]})")
        got = request(client, args.model, good)
        check(got["DEPTH"].shape[:2] == (1, 1), f"... and the next request is served")

    refused("zero views", ["views", "view_count"], images=np.zeros((1, 0, 48, 64, 3), np.uint8))
    refused("float pixels", ["data type", "datatype", "FP32"], images=np.zeros((1, 1, 48, 64, 3), np.float32), images_dtype="FP32")
    refused("four channels", ["shape", "dims"], images=np.zeros((1, 1, 48, 64, 4), np.uint8))
    bad_ext = ext2.copy()
    bad_ext[0, 1, 0, 3] = np.nan
    refused("non-finite known extrinsics", ["finite"], images=cam_images, extrinsics=bad_ext, intrinsics=k2)
    refused("extrinsics for the wrong number of views", ["KNOWN_EXTRINSICS", "shape"],
            images=cam_images, extrinsics=np.stack([ext[:1], ext[:1]]), intrinsics=k2)

    # Metrics: Triton's Prometheus endpoint counts the backend's successes and failures.
    success = metric(args.metrics, "nv_inference_request_success", args.model)
    failure = metric(args.metrics, "nv_inference_request_failure", args.model, reason="BACKEND")
    check(success is not None and success >= 24 + 6, f"metrics: nv_inference_request_success {success}")
    # zero views, non-finite and misshapen cameras fail in the backend (the others in Triton).
    check(failure is not None and failure >= 3, f"metrics: nv_inference_request_failure (reason BACKEND) {failure}")

    print(f"{'FAILED: ' + str(len(FAILED)) if FAILED else 'all passed'}")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
