//! `layers/mlp.py`: fc1 -> GELU -> fc2.
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::model::execution::GlueKernels;
use crate::nn::Linear;
use crate::weights::WeightLoader;

pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
}

impl Mlp {
    pub fn new(w: &mut WeightLoader, prefix: &str, in_dim: i64, hidden: i64, out_dim: i64, kind: Kind) -> Result<Self> {
        Ok(Mlp {
            fc1: Linear::new(w, &format!("{prefix}.fc1"), in_dim, hidden, true, kind)?,
            fc2: Linear::new(w, &format!("{prefix}.fc2"), hidden, out_dim, true, kind)?,
        })
    }

    /// Takes `x` so that it is freed once `fc1` has read it: the hidden activations are the
    /// block's largest (4x the width), and with many views every byte of them counts.
    /// `glue`: fc1 and its GELU in one matrix product when it takes the call
    /// (`GlueKernels::linear_gelu`).
    pub fn forward(&self, x: Tensor, glue: Option<&dyn GlueKernels>) -> Result<Tensor> {
        let hidden = match glue.and_then(|g| g.linear_gelu(&x, &self.fc1)) {
            Some(hidden) => hidden?,
            None => {
                let mut hidden = self.fc1.forward(&x)?;
                // nn.GELU() is the exact (erf) form; in place, the same kernel as out of place.
                let _same_tensor = hidden.f_gelu_("none")?;
                hidden
            }
        };
        drop(x);
        self.fc2.forward(&hidden)
    }
}
