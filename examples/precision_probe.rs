//! Measures how far reduced precision moves the outputs from fp32 on an oracle case.
//! `cargo run --release --example precision_probe -- CHECKPOINT REFERENCE.safetensors`
use da3::{Engine, LoadOptions, Precision};
use da3::options::ForwardOptions;
use tch::{Kind, Tensor};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reference: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&args[2]).unwrap().into_iter().collect();
    let input = &reference["input"];
    let fp32 = Engine::load(&args[1], LoadOptions::from_env(false, Precision::Fp32).unwrap()).unwrap();
    let base = fp32.forward(input, None, &ForwardOptions::default(), false).unwrap();
    for p in [Precision::Bf16, Precision::Fp16] {
        let e = Engine::load(&args[1], LoadOptions::from_env(false, p).unwrap()).unwrap();
        let t0 = std::time::Instant::now();
        let out = e.forward(input, None, &ForwardOptions::default(), false).unwrap();
        let rel = |a: &Tensor, b: &Tensor| {
            let d = (a.to_kind(Kind::Double) - b.to_kind(Kind::Double)).abs();
            (d.max().double_value(&[]), (d.mean(Kind::Double) / b.to_kind(Kind::Double).abs().mean(Kind::Double)).double_value(&[]))
        };
        // Metric and mono models predict no cameras.
        let extrinsics = out.extrinsics.as_ref().zip(base.extrinsics.as_ref()).map(|(a, b)| rel(a, b));
        println!("{p:?} on {}: depth max abs {:?} (rel mean), extrinsics {:?}, {:?}", e.device_name(), rel(&out.depth, &base.depth), extrinsics, t0.elapsed());
    }
}
