//! How a forward runs, as opposed to what it computes: the runner chooses an execution
//! profile per forward and passes it down (network -> backbone -> block -> attention). The
//! official profile (`Execution::official`) is libtorch's SDPA, the reference view read back
//! to the host, fp32 features and every block on the network's own device.
use tch::{Kind, Tensor};

use super::dinov2::layers::rope::RopeTables;
use super::dinov2::{BlockState, DinoVisionTransformer};
use crate::error::{Error, Result};
use crate::nn::{LayerNorm, Linear};

/// A fused attention implementation supplied from outside the model (e.g. cuDNN's).
pub trait AttentionKernel: Send + Sync {
    /// Fused attention of (B, heads, N, head_dim) q, k, v (already in the compute kind), or
    /// `None` when this kernel does not handle the call (then libtorch's SDPA runs, as the
    /// official).
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Option<Tensor>;
}

/// Fused kernels for the glue of a transformer block under `Execution::fused_glue`, supplied
/// from outside the model (e.g. run-time compiled CUDA kernels). Same arithmetic as the
/// fused glue in libtorch operations (fp32, one rounding to the compute kind), fewer passes.
/// Each returns `None` when it does not handle the call (then the libtorch operations run)
/// and `Some(Err)` when it failed (e.g. out of memory).
pub trait GlueKernels: Send + Sync {
    /// q, k, v (B, heads, N, head_dim) from the qkv projection `qkv` (B, N, 3 * heads *
    /// head_dim): q and k through the QK-norm LayerNorms (q's, k's) and RoPE when given, v as
    /// it is. May rewrite `qkv` in place (the projection, which the caller does not read
    /// again) and return strided views of it.
    fn attention_inputs(
        &self,
        qkv: &mut Tensor,
        heads: i64,
        qk_norm: Option<(&LayerNorm, &LayerNorm)>,
        rope: Option<&RopeTables>,
    ) -> Option<Result<(Tensor, Tensor, Tensor)>>;

    /// The LayerScale residual update `x += gamma * branch` in place (fp32, as addcmul_), for
    /// the update no LayerNorm follows within the block.
    fn residual_update(&self, x: &mut Tensor, branch: &Tensor, gamma: &Tensor) -> Option<Result<()>>;

    /// `norm(x)` of the fp32 residual stream `x`, in `kind`.
    fn layer_norm(&self, x: &Tensor, norm: &LayerNorm, kind: Kind) -> Option<Result<Tensor>>;

    /// `gelu(linear(x))` as one matrix product with the bias and the GELU in its epilogue
    /// (`x` in the compute kind, rows of `linear`'s input width): one pass over the MLP's
    /// hidden activations (4x the width) fewer. The epilogue's GELU is the tanh form, not
    /// `nn.GELU`'s exact erf, so this is a numerics choice within the accuracy bound.
    fn linear_gelu(&self, x: &Tensor, linear: &Linear) -> Option<Result<Tensor>>;

    /// The LayerScale residual update `x + gamma * branch` (fp32, a new tensor) and its
    /// `norm` in `kind`, in one pass.
    fn residual_layer_norm(
        &self,
        x: &Tensor,
        branch: &Tensor,
        gamma: &Tensor,
        norm: &LayerNorm,
        kind: Kind,
    ) -> Option<Result<(Tensor, Tensor)>>;
}

/// Kernels for the dense heads' glue, supplied from outside the model (e.g. run-time compiled
/// CUDA kernels): the same values as libtorch's operations, fewer passes. Each returns `None`
/// when it does not handle the call (then libtorch's operations run) and `Some(Err)` when it
/// failed.
pub trait HeadKernels: Send + Sync {
    /// `interpolate(x, size, mode="bilinear", align_corners=True)` of the (B, C, h, w) map `x`,
    /// plus `add` ((1, C, H, W) in x's kind, added to the rounded result and rounded again, as
    /// libtorch's add after the upsample) when given.
    fn upsample_bilinear(&self, x: &Tensor, size: (i64, i64), add: Option<&Tensor>) -> Option<Result<Tensor>>;

    /// In place on `out`, the output of a convolution without its bias: `out + bias`, then
    /// `+ add` (out's shape, or (1, C, H, W) for every view) when given, then ReLU when `relu`,
    /// each step rounded as libtorch's separate operations (libtorch adds a cuDNN
    /// convolution's bias in a pass of its own).
    fn bias_epilogue(&self, out: &mut Tensor, bias: &Tensor, add: Option<&Tensor>, relu: bool) -> Option<Result<()>>;
}

/// Runs the any-view backbone's blocks on a prepared `BlockState` somewhere other than
/// "every block here, in order" (e.g. split over several devices).
pub trait BlockRunner {
    /// Runs every block of `backbone` (the backbone whose forward this is) on `state`,
    /// leaving each taken layer finished in `state.layers` and the exported block outputs in
    /// `state.exported`, as `DinoVisionTransformer::run_all_blocks` does.
    fn run(&self, backbone: &DinoVisionTransformer, state: &mut BlockState, exec: Execution<'_>) -> Result<()>;
}

/// What `Execution::stop` polls: told where the forward is, `Err` to stop it.
pub type StopPoll<'a> = dyn Fn(&str) -> Result<()> + Sync + 'a;

/// The execution profile of one forward.
#[derive(Clone, Copy)]
pub struct Execution<'a> {
    /// Fused attention for the backbone blocks; `None`: libtorch's SDPA.
    pub attention: Option<&'a dyn AttentionKernel>,
    /// Choose the reference view without a host read-back (same view, but
    /// `BackboneOutput::reference_view` stays `None`).
    pub reference_on_device: bool,
    /// Kind of the features handed to the head (`None`: fp32, as the official). A
    /// reduced-precision head takes them in its kind: half the memory of the taken layers,
    /// which dominate at many views.
    pub features_kind: Option<Kind>,
    /// Fewer passes over the activations: RoPE in three passes from tables gathered once per
    /// forward (fp32 arithmetic, written in the compute kind; the official: about fifteen
    /// passes per tensor and block), and each LayerScale + residual add in one pass (fp32,
    /// rounded once).
    pub fused_glue: bool,
    /// Kernels for that glue (with `fused_glue` only): LayerNorm into the compute kind, the
    /// residual update with the next LayerNorm, QK-norm + RoPE + attention layout in one pass
    /// each; `None`: the glue in libtorch operations.
    pub glue: Option<&'a dyn GlueKernels>,
    /// The dense head's glue: its bilinear upsampling (with the UV embedding added after the
    /// last one) and what follows its convolutions' biases (residual adds, ReLUs, embeddings);
    /// `None`: libtorch's operations, as the official.
    pub head_kernels: Option<&'a dyn HeadKernels>,
    /// Where the any-view backbone's blocks run; `None`: every block here, in order.
    pub blocks: Option<&'a dyn BlockRunner>,
    /// Polled between stages and before each backbone block (`check_stop`) with where the
    /// forward is (e.g. "before backbone block 3 of 24"): `Err` stops the forward with that
    /// error (`Error::Cancelled` when the host asked it to stop; the runner may also inject
    /// faults here, or note the memory in use); `None`: never polled. On a GPU the checks
    /// happen as the host queues the work, so kernels already queued still run; a captured
    /// CUDA graph replays as one launch, with no check inside (the runner checks before and
    /// after it).
    pub stop: Option<&'a StopPoll<'a>>,
}

impl Execution<'_> {
    /// As the official: SDPA, reference view read back to the host, fp32 features, every
    /// block on the network's device.
    pub fn official() -> Self {
        Execution {
            attention: None,
            reference_on_device: false,
            features_kind: None,
            fused_glue: false,
            glue: None,
            head_kernels: None,
            blocks: None,
            stop: None,
        }
    }

    /// `stop`'s error naming `at` (e.g. "before block 3 of 12"): "the forward was cancelled
    /// before block 3 of 12".
    pub fn check_stop(&self, at: impl FnOnce() -> String) -> Result<()> {
        let Some(stop) = self.stop else { return Ok(()) };
        let at = at();
        match stop(&at) {
            Err(Error::Cancelled(_)) => Err(Error::Cancelled(format!("the forward was cancelled {at}"))),
            Err(other) => Err(other.during(&format!("the forward {at}"))),
            Ok(()) => Ok(()),
        }
    }
}

impl Default for Execution<'_> {
    fn default() -> Self {
        Self::official()
    }
}
