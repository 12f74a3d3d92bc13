//! `model/cam_dec.py`: camera token -> pose encoding (translation, quaternion, fov).
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightLoader;

pub struct CameraDec {
    pub backbone: [Linear; 2],
    pub fc_t: Linear,
    pub fc_qvec: Linear,
    pub fc_fov: Linear,
}

impl CameraDec {
    pub fn new(w: &mut WeightLoader, prefix: &str, dim_in: i64) -> Result<Self> {
        let kind = Kind::Float;
        let lin = |w: &mut WeightLoader, n: &str, o: i64| Linear::new(w, &format!("{prefix}.{n}"), dim_in, o, true, kind);
        Ok(CameraDec {
            backbone: [lin(w, "backbone.0", dim_in)?, lin(w, "backbone.2", dim_in)?],
            fc_t: lin(w, "fc_t", 3)?,
            fc_qvec: lin(w, "fc_qvec", 4)?,
            fc_fov: lin(w, "fc_fov.0", 2)?,
        })
    }

    /// (S, C) camera tokens -> (S, 9) pose encodings.
    pub fn forward(&self, feat: &Tensor) -> Result<Tensor> {
        let feat = self.backbone[1].forward(&self.backbone[0].forward(feat)?.f_relu()?)?.f_relu()?;
        Ok(Tensor::f_cat(&[self.fc_t.forward(&feat)?, self.fc_qvec.forward(&feat)?, self.fc_fov.forward(&feat)?.f_relu()?], -1)?)
    }
}
