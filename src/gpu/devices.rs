//! Which devices a model's replicas go to, and in what precision they compute.
use tch::{Device, Kind};

use super::backend::{cuda_available, cuda_unavailable_reason};
use super::support;
use crate::error::{Error, Result};
use crate::options::Precision;
use crate::settings::Settings;

/// The devices of a model's replicas when the caller names none (`da3_create`), one replica
/// each:
/// - `settings.devices` (`DA3_DEVICES`: a comma-separated list, e.g. `cuda:0,cuda:1` or
///   `cpu,cpu`) if set;
/// - else `settings.device` (`DA3_DEVICE`: `cpu`, `cuda`, `cuda:N`) if set: one device;
/// - else, with `use_accelerate`, every visible CUDA device (`CUDA_VISIBLE_DEVICES`, read by
///   CUDA itself, decides which are visible and renumbers them from 0);
/// - else the first GPU if any, else the CPU.
pub fn default_devices(settings: &Settings, use_accelerate: bool) -> Result<Vec<Device>> {
    if let Some(list) = &settings.devices {
        return parse_device_list(list).map_err(|e| match e {
            Error::InvalidArgument(m) => Error::InvalidArgument(format!("DA3_DEVICES: {m}")),
            other => other,
        });
    }
    if let Some(spec) = &settings.device {
        return Ok(vec![parse_device(spec)?]);
    }
    if use_accelerate && cuda_available() {
        return Ok((0..tch::Cuda::device_count() as usize).map(Device::Cuda).collect());
    }
    Ok(vec![if cuda_available() { Device::Cuda(0) } else { Device::Cpu }])
}

/// A comma-separated device list (`cpu`, `cuda`, `cuda:N`; repeats allowed, e.g. `cpu,cpu`
/// for two CPU replicas); all of one kind, since they share one precision.
pub fn parse_device_list(list: &str) -> Result<Vec<Device>> {
    let devices: Vec<Device> = list.split(',').map(parse_device).collect::<Result<_>>()?;
    if devices.is_empty() {
        return Err(Error::InvalidArgument(format!("'{list}' names no device")));
    }
    if devices.iter().any(|d| d.is_cuda() != devices[0].is_cuda()) {
        return Err(Error::InvalidArgument(format!("'{list}' mixes CPU and CUDA devices: replicas share one precision")));
    }
    Ok(devices)
}

pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let index = match spec.strip_prefix("cuda") {
        Some("") => 0,
        Some(rest) => rest
            .strip_prefix(':')
            .and_then(|i| i.parse::<usize>().ok())
            .ok_or_else(|| Error::InvalidArgument(format!("DA3_DEVICE='{spec}': expected cpu, cuda or cuda:N")))?,
        None => return Err(Error::InvalidArgument(format!("DA3_DEVICE='{spec}': expected cpu, cuda or cuda:N"))),
    };
    if !cuda_available() {
        return Err(Error::Unsupported(format!("DA3_DEVICE='{spec}' but {}", cuda_unavailable_reason())));
    }
    let count = tch::Cuda::device_count() as usize;
    if index >= count {
        return Err(Error::InvalidArgument(format!("DA3_DEVICE='{spec}' but only {count} CUDA device(s) are visible")));
    }
    Ok(Device::Cuda(index))
}

/// Human-readable device name: `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The concrete precision for `device`: `Auto` is bf16 on a GPU that computes in bf16
/// (compute capability 8.0 and later), fp16 on older GPUs, fp32 on the CPU. When the
/// capability cannot be queried (CUDA support library missing) it assumes bf16.
pub fn resolve_precision(precision: Precision, device: Device) -> Precision {
    match (precision, device) {
        (Precision::Auto, Device::Cpu) => Precision::Fp32,
        (Precision::Auto, Device::Cuda(index)) => match support::supports_bf16(index) {
            Ok(false) => Precision::Fp16,
            Ok(true) | Err(_) => Precision::Bf16,
        },
        (Precision::Auto, _) => Precision::Bf16,
        (p, _) => p,
    }
}

/// Compute kind of the transformer's matrix products for a resolved precision.
pub fn compute_kind(precision: Precision) -> Kind {
    match precision {
        Precision::Fp16 => Kind::Half,
        Precision::Bf16 => Kind::BFloat16,
        Precision::Fp32 | Precision::Auto => Kind::Float,
    }
}

