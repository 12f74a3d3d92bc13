"""Official da3-small fp32 forward on the CPU, with the time spent in its aux (ray) branch
measured by module hooks, interleaved with libda3's da3_infer (C API, ctypes) on one 640x480 frame
(-> 504x378, the same network input size). Process CPU time (every thread), which other jobs on
a shared machine disturb less than wall time. From the repository root, after cargo build --release:

    source scripts/env.sh && $PYTHON bench/cpu_aux_share.py
"""
import sys, time, statistics, torch, numpy as np
sys.path.insert(0, "bench"); sys.argv = ["x"]
import side_by_side as sbs
net = sbs.load_official("da3-small", "target/oracle/da3-small/checkpoint", torch.device("cpu"))
s = net.head.scratch
aux_mods = [s.refinenet1_aux, s.refinenet2_aux, s.refinenet3_aux, s.refinenet4_aux, *s.output_conv1_aux, s.output_conv2_aux[-1]]
acc = {"t": 0.0}; starts = {}
for m in aux_mods:
    m.register_forward_pre_hook(lambda mod, i: starts.__setitem__(id(mod), time.process_time()))
    m.register_forward_hook(lambda mod, i, o: acc.__setitem__("t", acc["t"] + time.process_time() - starts[id(mod)]))
ours = sbs.Libda3("target/release/libda3.so", "target/oracle/da3-small/checkpoint", "fp32")
frame = sbs.frames(1, 640, 480)
x = torch.randn(1, 1, 3, 378, 504)
rows = {"official_fwd": [], "official_aux": [], "libda3_e2e": []}
for i in range(int(sys.argv[1]) if len(sys.argv) > 1 else 8):
    acc["t"] = 0.0
    t = time.process_time()
    with torch.inference_mode():
        net(x)
    rows["official_fwd"].append((time.process_time() - t) * 1e3); rows["official_aux"].append(acc["t"] * 1e3)
    t = time.process_time(); ours.infer(frame); rows["libda3_e2e"].append((time.process_time() - t) * 1e3)
for k, v in rows.items():
    print(f"{k:14s} min {min(v):7.1f} ms  median {statistics.median(v):7.1f} ms   {[round(x) for x in v]}")
fwd, aux = np.array(rows["official_fwd"]), np.array(rows["official_aux"])
print("official forward without aux (per call, min/median):", round(float((fwd - aux).min()), 1), round(float(np.median(fwd - aux)), 1))
