//! The few `torch.nn` layers DA3 uses, loaded by their official parameter names.
//!
//! Mixed precision follows `torch.autocast`: matrix products and convolutions run in the
//! layer's compute kind, normalisations in fp32 (their output is fp32).
//!
//! Every tensor operation here is tch's fallible form (`f_*`): a libtorch error (out of
//! memory, a kernel failure) is returned, never a panic.
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::weights::WeightLoader;

/// `nn.Linear(in, out, bias)`.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn new(w: &mut WeightLoader, prefix: &str, in_dim: i64, out_dim: i64, bias: bool, kind: Kind) -> Result<Self> {
        Ok(Linear {
            weight: w.take(&format!("{prefix}.weight"), &[out_dim, in_dim], kind)?,
            bias: if bias { Some(w.take(&format!("{prefix}.bias"), &[out_dim], kind)?) } else { None },
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_to_kind(self.weight.kind())?.f_linear(&self.weight, self.bias.as_ref())?)
    }
}

/// `nn.Conv2d` with square kernel, stride and padding.
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    stride: i64,
    padding: i64,
}

/// The same values in channels-last memory order (NHWC strides, NCHW shape): cuDNN then runs
/// its native NHWC tensor-core kernels and its outputs stay channels-last.
pub fn channels_last(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

impl Conv2d {
    /// Stores the weights in `kind` (the layer then computes in it), channels-last if asked.
    pub fn convert(&mut self, kind: Kind, nhwc: bool) -> Result<()> {
        self.weight = self.weight.f_to_kind(kind)?;
        if nhwc {
            self.weight = channels_last(&self.weight)?;
        }
        self.bias = self.bias.as_ref().map(|b| b.f_to_kind(kind)).transpose()?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        w: &mut WeightLoader,
        prefix: &str,
        in_ch: i64,
        out_ch: i64,
        kernel: i64,
        stride: i64,
        padding: i64,
        bias: bool,
        kind: Kind,
    ) -> Result<Self> {
        Ok(Conv2d {
            weight: w.take(&format!("{prefix}.weight"), &[out_ch, in_ch, kernel, kernel], kind)?,
            bias: if bias { Some(w.take(&format!("{prefix}.bias"), &[out_ch], kind)?) } else { None },
            stride,
            padding,
        })
    }

    /// The (C, H, W) of this layer's output for an input of `height` x `width`.
    pub fn output_shape(&self, height: i64, width: i64) -> (i64, i64, i64) {
        let size = self.weight.size();
        let (channels, kernel) = (size[0], size[size.len() - 1]);
        let out = |n: i64| (n + 2 * self.padding - kernel) / self.stride + 1;
        (channels, out(height), out(width))
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.convolve(x, self.bias.as_ref())
    }

    fn convolve(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        Ok(x.f_to_kind(self.weight.kind())?.f_conv2d(
            &self.weight,
            bias,
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            1,
        )?)
    }
}

/// A convolution whose bias can be added apart from it (the accelerated head adds it in one
/// pass with what follows: `HeadKernels::bias_epilogue`).
pub trait Convolution {
    /// The layer's output, its bias included (as the official).
    fn output(&self, x: &Tensor) -> Result<Tensor>;
    /// The layer's output without its bias.
    fn output_unbiased(&self, x: &Tensor) -> Result<Tensor>;
    fn bias(&self) -> Option<&Tensor>;
}

impl Convolution for Conv2d {
    fn output(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    fn output_unbiased(&self, x: &Tensor) -> Result<Tensor> {
        self.convolve(x, None)
    }

    fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

/// `nn.ConvTranspose2d(c, c, kernel_size=k, stride=k, padding=0)`.
pub struct ConvTranspose2d {
    pub weight: Tensor,
    pub bias: Tensor,
    stride: i64,
}

impl ConvTranspose2d {
    /// Stores the weights in `kind` (the layer then computes in it), channels-last if asked.
    pub fn convert(&mut self, kind: Kind, nhwc: bool) -> Result<()> {
        self.weight = self.weight.f_to_kind(kind)?;
        if nhwc {
            self.weight = channels_last(&self.weight)?;
        }
        self.bias = self.bias.f_to_kind(kind)?;
        Ok(())
    }

    pub fn new(w: &mut WeightLoader, prefix: &str, in_ch: i64, out_ch: i64, kernel: i64, stride: i64, kind: Kind) -> Result<Self> {
        Ok(ConvTranspose2d {
            weight: w.take(&format!("{prefix}.weight"), &[in_ch, out_ch, kernel, kernel], kind)?,
            bias: w.take(&format!("{prefix}.bias"), &[out_ch], kind)?,
            stride,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.convolve(x, Some(&self.bias))
    }

    fn convolve(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        Ok(x.f_to_kind(self.weight.kind())?.f_conv_transpose2d(
            &self.weight,
            bias,
            [self.stride, self.stride],
            [0, 0],
            [0, 0],
            1,
            [1, 1],
        )?)
    }
}

impl Convolution for ConvTranspose2d {
    fn output(&self, x: &Tensor) -> Result<Tensor> {
        self.forward(x)
    }

    fn output_unbiased(&self, x: &Tensor) -> Result<Tensor> {
        self.convolve(x, None)
    }

    fn bias(&self) -> Option<&Tensor> {
        Some(&self.bias)
    }
}

/// `nn.LayerNorm(dim, eps)`, always computed in fp32.
pub struct LayerNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    dim: i64,
    eps: f64,
}

impl LayerNorm {
    /// PyTorch's default epsilon.
    pub const DEFAULT_EPS: f64 = 1e-5;

    pub fn new(w: &mut WeightLoader, prefix: &str, dim: i64, eps: f64) -> Result<Self> {
        Self::new_shared(w, &[prefix.to_owned()], dim, eps)
    }

    /// A LayerNorm module that sits under several names (shared between parents).
    pub fn new_shared(w: &mut WeightLoader, prefixes: &[String], dim: i64, eps: f64) -> Result<Self> {
        let names = |suffix: &str| prefixes.iter().map(|p| format!("{p}.{suffix}")).collect::<Vec<_>>();
        Ok(LayerNorm {
            weight: w.take_any(&names("weight"), &[dim], Kind::Float)?,
            bias: w.take_any(&names("bias"), &[dim], Kind::Float)?,
            dim,
            eps,
        })
    }

    /// The epsilon added to the variance.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_to_kind(Kind::Float)?.f_layer_norm([self.dim], Some(&self.weight), Some(&self.bias), self.eps, true)?)
    }
}

/// `Tensor::copy` (a new tensor with the same values), fallible.
pub fn copy(x: &Tensor) -> Result<Tensor> {
    let mut out = x.f_zeros_like()?;
    out.f_copy_(x)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tch::Device;

    use super::*;
    use crate::error::Error;

    /// A libtorch failure inside a layer comes back as an error (no panic to catch).
    #[test]
    fn a_libtorch_error_is_an_error_not_a_panic() {
        let options = (Kind::Float, Device::Cpu);
        let tensors = BTreeMap::from([
            ("l.weight".to_owned(), Tensor::ones([2, 3], options)),
            ("l.bias".to_owned(), Tensor::zeros([2], options)),
        ]);
        let mut w = WeightLoader::from_tensors(tensors, Device::Cpu);
        let linear = Linear::new(&mut w, "l", 3, 2, true, Kind::Float).unwrap();
        w.finish().unwrap();
        assert_eq!(linear.forward(&Tensor::ones([4, 3], options)).unwrap().size(), [4, 2]);
        let mismatched = std::panic::catch_unwind(|| linear.forward(&Tensor::ones([4, 5], options)));
        assert!(matches!(mismatched, Ok(Err(Error::Torch(_)))), "a shape mismatch is Err(Error::Torch)");
    }
}
