//! `layers/mlp.py`: fc1 -> GELU -> fc2.
use tch::{Kind, Tensor};

use crate::error::Result;
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

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // nn.GELU() is the exact (erf) form.
        self.fc2.forward(&self.fc1.forward(x)?.f_gelu("none")?)
    }
}
