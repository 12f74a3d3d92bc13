#!/usr/bin/env python3
"""Load test: many concurrent clients sending four-view scenes, through Triton (libtriton_da3.so)
or straight to libda3's da3_infer_scenes in this process; prints one JSON line per run.

  triton_load.py triton --url 127.0.0.1:8000 --model da3-large [--clients 16] [--seconds 30]
  triton_load.py direct --libda3 PATH --checkpoint DIR [--devices cuda:0] [--clients 16] [--seconds 30]

Every client sends one scene (--views RGB8 frames of --frame WxH, deterministic noise) per request,
waits for the answer (DEPTH only, binary over HTTP for Triton; the result freed at once for
direct calls), and sends the next, for --seconds after --warmup seconds. Reported: scenes/s,
latency p50/p99 (ms) per request. Standard library and numpy only (the device machine has no
tritonclient): HTTP with the KServe v2 binary tensor extension.
"""
import argparse
import ctypes
import http.client
import json
import threading
import time

import numpy as np


def frames(views, width, height, seed):
    return np.random.default_rng(seed).integers(0, 256, (1, views, height, width, 3), dtype=np.uint8)


def triton_caller(url, model, images):
    host, port = url.split(":")
    body_json = json.dumps({
        "inputs": [{"name": "IMAGES", "datatype": "UINT8", "shape": list(images.shape),
                    "parameters": {"binary_data_size": images.nbytes}}],
        "outputs": [{"name": "DEPTH", "parameters": {"binary_data": True}}],
    }).encode()
    body = body_json + images.tobytes()
    headers = {"Inference-Header-Content-Length": str(len(body_json)), "Content-Type": "application/octet-stream"}
    conn = http.client.HTTPConnection(host, int(port), timeout=300)

    def call():
        conn.request("POST", f"/v2/models/{model}/infer", body, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
        return len(data)

    return call


class Image(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("width", ctypes.c_uint32), ("height", ctypes.c_uint32),
                ("stride", ctypes.c_size_t), ("format", ctypes.c_uint32)]


class Scene(ctypes.Structure):
    _fields_ = [("views", ctypes.POINTER(Image)), ("view_count", ctypes.c_size_t)]


def direct_model(args):
    lib = ctypes.CDLL(args.libda3)
    lib.da3_create_on_devices.argtypes = [ctypes.c_char_p, ctypes.c_bool, ctypes.c_uint32, ctypes.c_char_p,
                                          ctypes.POINTER(ctypes.c_void_p)]
    lib.da3_infer_scenes.argtypes = [ctypes.c_void_p, ctypes.POINTER(Scene), ctypes.c_size_t, ctypes.c_void_p,
                                     ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p]
    lib.da3_result_free.argtypes = [ctypes.c_void_p]
    lib.da3_last_error_message.restype = ctypes.c_char_p
    model = ctypes.c_void_p()
    status = lib.da3_create_on_devices(args.checkpoint.encode(), True, 0, args.devices.encode(), ctypes.byref(model))
    if status:
        raise SystemExit(f"da3_create_on_devices: {status} {lib.da3_last_error_message()}")
    return lib, model


def direct_caller(lib, model, images):
    _, n, h, w, _ = images.shape
    views = (Image * n)(*[Image(images[0, i].ctypes.data, w, h, w * 3, 0) for i in range(n)])
    scene = Scene(views, n)

    def call():
        result = ctypes.c_void_p()
        status = lib.da3_infer_scenes(model, ctypes.byref(scene), 1, None, ctypes.byref(result), None)
        if status:
            raise RuntimeError(f"da3_infer_scenes: {status} {lib.da3_last_error_message()}")
        lib.da3_result_free(result)
        return 0

    return call


def load(make_call, clients, warmup, seconds):
    latencies, errors, lock = [], [], threading.Lock()
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    def client(i):
        call = make_call(i)
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at:
                return
            try:
                call()
            except Exception as e:  # noqa: BLE001 - reported, not fatal
                with lock:
                    errors.append(str(e))
                return
            t1 = time.perf_counter()
            if t0 >= measure_from and t1 <= stop_at:
                with lock:
                    latencies.append(t1 - t0)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat = np.array(latencies) * 1e3
    return {
        "scenes_per_s": round(len(latencies) / seconds, 2),
        "requests": len(latencies),
        "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["triton", "direct"])
    p.add_argument("--url", default="127.0.0.1:8000")
    p.add_argument("--model", default="da3-large")
    p.add_argument("--libda3")
    p.add_argument("--checkpoint")
    p.add_argument("--devices", default="cuda:0")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--frame", default="640x480")
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--label", default="")
    args = p.parse_args()
    w, h = map(int, args.frame.split("x"))
    scenes = [frames(args.views, w, h, seed) for seed in range(args.clients)]
    if args.mode == "triton":
        make_call = lambda i: triton_caller(args.url, args.model, scenes[i])  # noqa: E731
    else:
        lib, model = direct_model(args)
        make_call = lambda i: direct_caller(lib, model, scenes[i])  # noqa: E731
    out = load(make_call, args.clients, args.warmup, args.seconds)
    print(json.dumps({"mode": args.mode, "label": args.label, "clients": args.clients, "views": args.views,
                      "frame": args.frame, "seconds": args.seconds, **out}), flush=True)


if __name__ == "__main__":
    main()
