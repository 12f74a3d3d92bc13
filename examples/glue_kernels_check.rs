//! Checks the run-time compiled glue kernels (`cpp/glue_kernels_source.h`, through
//! `CudaGlueKernels`) against the same arithmetic in libtorch operations on a GPU, the way the
//! blocks of da3-large (and da3-giant's row width) use them, in bf16 and fp16:
//! `cargo run --release --example glue_kernels_check [-- cuda:N]`.
//!
//! Both sides compute in fp32 and round once to the compute kind; they differ only in the order
//! of the LayerNorm sums and in fused multiply-adds, i.e. by a few fp32 units in the last place
//! of the operands, which can move a value across a rounding boundary. Checked per value:
//! |kernel - libtorch| <= 1 unit in the last place of the compute kind at the value's magnitude
//! + 1e-5 x the tensor's largest magnitude (the fp32 error of cancelling operands), and at most
//! 0.1 % of the values differing at all.
//!
//! fc1 with its GELU in the matrix product's epilogue (the tanh form) is checked against the fp32
//! arithmetic rounded once, within one unit in the last place and the accumulation order.
//!
//! The heads' bilinear upsampling and bias epilogues and the in-place residual update repeat
//! libtorch's arithmetic exactly: checked bit for bit. One line per check; exit status 1 when one
//! fails, 2 without a GPU.
use std::collections::BTreeMap;

use da3::gpu::support::CudaGlueKernels;
use da3::model::dinov2::layers::rope::{PositionGetter, RotaryPositionEmbedding2D};
use da3::model::{GlueKernels, HeadKernels};
use da3::nn::LayerNorm;
use da3::weights::WeightLoader;
use tch::{Device, Kind, Tensor};

fn layer_norm(dim: i64, eps: f64, device: Device) -> LayerNorm {
    let options = (Kind::Float, device);
    let tensors = BTreeMap::from([
        (
            "n.weight".to_owned(),
            Tensor::randn([dim], options) * 0.5 + 1.0,
        ),
        ("n.bias".to_owned(), Tensor::randn([dim], options) * 0.1),
    ]);
    let mut w = WeightLoader::from_tensors(tensors, device);
    let norm = LayerNorm::new(&mut w, "n", dim, eps).expect("layer norm");
    w.finish().expect("all taken");
    norm
}

/// The largest |got - want| as a share of what the check allows (see the module doc), and the
/// share of values that differ at all.
fn difference(got: &Tensor, want: &Tensor, kind: Kind) -> (f64, f64) {
    let mantissa_bits = if kind == Kind::BFloat16 { 7.0 } else { 10.0 };
    let (got, want) = (got.to_kind(Kind::Float), want.to_kind(Kind::Float));
    let ulp = (want.abs().clamp_min(1e-30).log2().floor() - mantissa_bits).exp2();
    let allowed = ulp + 1e-5 * want.abs().max().double_value(&[]);
    let worst = ((&got - &want).abs() / allowed).max().double_value(&[]);
    let differing = got
        .ne_tensor(&want)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    (worst, differing)
}

fn report(name: &str, got: &Tensor, want: &Tensor, kind: Kind, failures: &mut u32) {
    assert_eq!(got.size(), want.size(), "{name}: shapes");
    assert_eq!(got.kind(), kind, "{name}: kind");
    let (worst, differing) = difference(got, want, kind);
    let ok = worst <= 1.0 && differing <= 1e-3;
    if !ok {
        *failures += 1;
    }
    println!(
        "{name:<52} {kind:?}: max {worst:.2} of the allowed difference, {:.4} % differ  {}",
        differing * 100.0,
        if ok { "ok" } else { "FAILED" }
    );
}

fn main() {
    let device = match std::env::args().nth(1) {
        Some(d) => Device::Cuda(d.trim_start_matches("cuda:").parse().expect("cuda:N")),
        None => Device::Cuda(0),
    };
    // Loads libtorch's CUDA backend first (a Rust binary does not link it by itself).
    if !da3::gpu::cuda_available() {
        eprintln!("no CUDA device: {}", da3::gpu::cuda_unavailable_reason());
        std::process::exit(2);
    }
    tch::manual_seed(0);
    let kernels = CudaGlueKernels::new(true);
    let mut failures = 0;
    let _guard = tch::no_grad_guard();
    for kind in [Kind::BFloat16, Kind::Half] {
        // Attention inputs: 4 views of 24 x 36 patches + 1 camera token, heads of 64 channels:
        // da3-large's 16 (four rows per warp), da3-small's 6 (two), and 3 (one).
        let (views, (h, w)) = (4, (24, 36));
        let tokens = h * w + 1;
        let rope = RotaryPositionEmbedding2D::new(100.0);
        let grid = PositionGetter::positions(h, w, device).unwrap() + 1;
        let local = Tensor::cat(&[Tensor::zeros([1, 2], (Kind::Int64, device)), grid], 0);
        let positions = local
            .unsqueeze(0)
            .expand([views, tokens, 2], false)
            .contiguous();
        let tables = rope.gathered_tables(&positions, h.max(w), 64).unwrap();
        let (q_norm, k_norm) = (layer_norm(64, 1e-5, device), layer_norm(64, 1e-5, device));
        for heads in [16, 6, 3] {
            let qkv = (Tensor::randn([views, tokens, 3 * heads * 64], (Kind::Float, device)) * 2.0
                + 0.3)
                .to_kind(kind);
            let split = qkv
                .reshape([views, tokens, 3, heads, 64])
                .permute([2, 0, 3, 1, 4]);
            for (label, norms, with_rope) in [
                ("QK-norm + RoPE", true, true),
                ("neither (layout only)", false, false),
            ] {
                let label = format!("{heads} heads, {label}");
                let norm_pair = norms.then_some((&q_norm, &k_norm));
                // The kernel rewrites its projection in place: a copy, `qkv` stays the input.
                let mut projected = qkv.copy();
                let (q, k, v) = kernels
                    .attention_inputs(&mut projected, heads, norm_pair, with_rope.then_some(&tables))
                    .expect("the kernel takes this call")
                    .expect("the kernel runs");
                for (i, (got, norm)) in [(&q, &q_norm), (&k, &k_norm)].into_iter().enumerate() {
                    let mut want = split.get(i as i64);
                    if norms {
                        want = norm.forward(&want).unwrap();
                    }
                    let want = if with_rope {
                        tables.apply(&want, kind).unwrap()
                    } else {
                        want.to_kind(kind)
                    };
                    report(
                        &format!("attention inputs, {label}: {}", ["q", "k"][i]),
                        got,
                        &want.contiguous(),
                        kind,
                        &mut failures,
                    );
                }
                report(
                    &format!("attention inputs, {label}: v"),
                    &v,
                    &split.get(2).contiguous(),
                    kind,
                    &mut failures,
                );
            }
        }
        // LayerNorms of the residual stream: da3-large's 1024 channels and da3-giant's 1536.
        for channels in [1024, 1536] {
            let norm = layer_norm(channels, 1e-6, device);
            let x = Tensor::randn([views, tokens, channels], (Kind::Float, device)) * 3.0 + 0.5;
            let got = kernels
                .layer_norm(&x, &norm, kind)
                .expect("takes")
                .expect("runs");
            report(
                &format!("LayerNorm, {channels} channels"),
                &got,
                &norm.forward(&x).unwrap().to_kind(kind),
                kind,
                &mut failures,
            );
            let branch =
                Tensor::randn([views, tokens, channels], (Kind::Float, device)).to_kind(kind);
            let gamma = Tensor::randn([channels], (Kind::Float, device)) * 0.1;
            let (updated, normed) = kernels
                .residual_layer_norm(&x, &branch, &gamma, &norm, kind)
                .expect("takes")
                .expect("runs");
            let want_updated = x.addcmul(&branch, &gamma);
            let residual_diff = (&updated - &want_updated).abs().max().double_value(&[]);
            let residual_ok = residual_diff <= 1e-5 * want_updated.abs().max().double_value(&[]);
            if !residual_ok {
                failures += 1;
            }
            println!(
                "{:<52} fp32: max difference {residual_diff:.3e}  {}",
                format!("residual update, {channels} channels"),
                if residual_ok { "ok" } else { "FAILED" }
            );
            let want_normed = norm.forward(&want_updated).unwrap().to_kind(kind);
            report(
                &format!("residual + LayerNorm, {channels} channels"),
                &normed,
                &want_normed,
                kind,
                &mut failures,
            );
        }
    }
    // The heads' bilinear upsampling (align_corners=True) of channels-last maps: bit for bit
    // libtorch's, with and without the UV embedding added after it. Shapes of da3-large's head
    // at 336 x 504 (two views), and edge cases: a size of 1 on either side, a reduction.
    for kind in [Kind::BFloat16, Kind::Half] {
        for ((views, channels, h, w), (out_h, out_w), with_add) in [
            ((2, 256, 12, 18), (24, 36), false),
            ((2, 256, 96, 144), (192, 288), false),
            ((2, 128, 192, 288), (336, 504), true),
            ((3, 64, 7, 5), (1, 9), true),
            ((1, 8, 1, 1), (4, 4), false),
            ((2, 16, 20, 30), (13, 17), true),
        ] {
            let x = Tensor::randn([views, channels, h, w], (Kind::Float, device)).to_kind(kind);
            let x = da3::nn::channels_last(&x).unwrap();
            let add = Tensor::randn([1, out_h, out_w, channels], (Kind::Float, device))
                .to_kind(kind)
                .permute([0, 3, 1, 2]);
            let add = with_add.then_some(&add);
            let got = kernels
                .upsample_bilinear(&x, (out_h, out_w), add)
                .expect("the kernel takes this call")
                .expect("the kernel runs");
            let mut want = x.upsample_bilinear2d([out_h, out_w], true, None, None);
            if let Some(add) = add {
                want += add;
            }
            let same_layout = got.permute([0, 2, 3, 1]).is_contiguous();
            let differing = got.ne_tensor(&want).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
            let ok = same_layout && got.size() == want.size() && differing == 0.0;
            if !ok {
                failures += 1;
            }
            println!(
                "{:<52} {kind:?}: {:.4} % differ, channels-last {same_layout}  {}",
                format!(
                    "upsample {views}x{channels}x{h}x{w} -> {out_h}x{out_w}{}",
                    if with_add { " + add" } else { "" }
                ),
                differing * 100.0,
                if ok { "ok" } else { "FAILED" }
            );
        }
    }
    // What follows a convolution's bias in the heads, in place, bit for bit libtorch's
    // separate operations: the bias alone, + ReLU, + a residual, + an embedding for every view.
    for kind in [Kind::BFloat16, Kind::Half] {
        let (views, channels, h, w) = (3, 256, 48, 72);
        let conv_out = da3::nn::channels_last(&Tensor::randn([views, channels, h, w], (Kind::Float, device)).to_kind(kind)).unwrap();
        let bias = Tensor::randn([channels], (Kind::Float, device)).to_kind(kind);
        let residual = da3::nn::channels_last(&Tensor::randn([views, channels, h, w], (Kind::Float, device)).to_kind(kind)).unwrap();
        let embedding = Tensor::randn([1, h, w, channels], (Kind::Float, device)).to_kind(kind).permute([0, 3, 1, 2]);
        for (label, add, relu) in [
            ("bias", None, false),
            ("bias + ReLU", None, true),
            ("bias + residual", Some(&residual), false),
            ("bias + embedding", Some(&embedding), false),
            ("bias + residual + ReLU", Some(&residual), true),
        ] {
            let mut got = da3::nn::copy(&conv_out).unwrap();
            let storage = got.data_ptr();
            kernels.bias_epilogue(&mut got, &bias, add, relu).expect("the kernel takes this call").expect("the kernel runs");
            let mut want = &conv_out + bias.reshape([1, -1, 1, 1]);
            if let Some(add) = add {
                want += add;
            }
            if relu {
                want = want.relu();
            }
            let differing = got.ne_tensor(&want).to_kind(Kind::Float).mean(Kind::Float).double_value(&[]);
            let ok = differing == 0.0 && got.data_ptr() == storage;
            if !ok {
                failures += 1;
            }
            println!(
                "{:<52} {kind:?}: {:.4} % differ, in place  {}",
                format!("conv epilogue: {label}"),
                differing * 100.0,
                if ok { "ok" } else { "FAILED" }
            );
        }
        // The LayerScale residual update in place, as addcmul_ (fp32).
        let mut x = Tensor::randn([2, 877, 1024], (Kind::Float, device));
        let branch = Tensor::randn([2, 877, 1024], (Kind::Float, device)).to_kind(kind);
        let gamma = Tensor::randn([1024], (Kind::Float, device)) * 0.1;
        let want = x.addcmul(&branch, &gamma);
        kernels.residual_update(&mut x, &branch, &gamma).expect("takes").expect("runs");
        let diff = (&x - &want).abs().max().double_value(&[]);
        if diff != 0.0 {
            failures += 1;
        }
        println!(
            "{:<52} {kind:?}: max difference {diff:.3e}  {}",
            "residual update in place (addcmul_)",
            if diff == 0.0 { "ok" } else { "FAILED" }
        );
        // fc1 + bias + GELU as one product (cuBLASLt's epilogue, the tanh form): against the
        // fp32 arithmetic rounded once, within one unit in the last place (+ 1e-5 x the
        // largest magnitude, the accumulation order); how far the exact GELU is: reported.
        let linear = da3::nn::Linear {
            weight: (Tensor::randn([4096, 1024], (Kind::Float, device)) * 0.03).to_kind(kind),
            bias: Some((Tensor::randn([4096], (Kind::Float, device)) * 0.1).to_kind(kind)),
        };
        let x = Tensor::randn([2, 877, 1024], (Kind::Float, device)).to_kind(kind);
        let got = kernels.linear_gelu(&x, &linear).expect("takes").expect("runs");
        let fp32 = x.to_kind(Kind::Float).linear(
            &linear.weight.to_kind(Kind::Float),
            linear.bias.as_ref().map(|b| b.to_kind(Kind::Float)).as_ref(),
        );
        let (worst, differing) = difference(&got, &fp32.gelu("tanh").to_kind(kind), kind);
        let exact = (&got.to_kind(Kind::Float) - fp32.gelu("none")).abs().max().double_value(&[]);
        let ok = worst <= 1.0;
        if !ok {
            failures += 1;
        }
        println!(
            "{:<52} {kind:?}: max {worst:.2} of the allowed difference, {:.4} % differ; \
             to the exact GELU (fp32) max {exact:.3e}  {}",
            "fc1 + GELU (tanh) in the product's epilogue",
            differing * 100.0,
            if ok { "ok" } else { "FAILED" }
        );
    }
    // What the kernels decline (then libtorch's operations run): heads of other sizes.
    let mut odd = Tensor::zeros([1, 4, 3 * 2 * 32], (Kind::BFloat16, device));
    let declined = kernels.attention_inputs(&mut odd, 2, None, None).is_none();
    if !declined {
        failures += 1;
    }
    println!(
        "{:<52} {}",
        "heads of 32 channels declined",
        if declined { "ok" } else { "FAILED" }
    );
    // ... and maps that are not channels-last, or of a channel count not a multiple of 8.
    let nchw = Tensor::zeros([1, 16, 4, 4], (Kind::BFloat16, device));
    let narrow = da3::nn::channels_last(&Tensor::zeros([1, 12, 4, 4], (Kind::BFloat16, device))).unwrap();
    let declined = kernels.upsample_bilinear(&nchw, (8, 8), None).is_none()
        && kernels.upsample_bilinear(&narrow, (8, 8), None).is_none();
    if !declined {
        failures += 1;
    }
    println!(
        "{:<52} {}",
        "NCHW maps and 12 channels declined by the upsampling",
        if declined { "ok" } else { "FAILED" }
    );
    println!(
        "{}",
        if failures == 0 {
            "all checks passed"
        } else {
            "CHECKS FAILED"
        }
    );
    std::process::exit(if failures == 0 { 0 } else { 1 });
}
