//! `model/dpt.py`: the DPT building blocks shared by the heads (scratch adapters and
//! feature-fusion blocks).
use tch::{Kind, Tensor};

use crate::nn::Conv2d;
use crate::weights::WeightLoader;

/// `_make_scratch`: 3x3 adapters from each stage's width to `features` (no bias).
pub struct Scratch {
    pub layer_rn: [Conv2d; 4],
}

impl Scratch {
    pub fn new(w: &mut WeightLoader, prefix: &str, in_channels: &[i64; 4], features: i64, kind: Kind) -> Self {
        let conv = |w: &mut WeightLoader, i: usize| {
            Conv2d::new(w, &format!("{prefix}.layer{}_rn", i + 1), in_channels[i], features, 3, 1, 1, false, kind)
        };
        Scratch { layer_rn: [conv(w, 0), conv(w, 1), conv(w, 2), conv(w, 3)] }
    }
}

/// `ResidualConvUnit`: x + conv2(relu(conv1(relu(x)))).
pub struct ResidualConvUnit {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
}

impl ResidualConvUnit {
    pub fn new(w: &mut WeightLoader, prefix: &str, features: i64, kind: Kind) -> Self {
        ResidualConvUnit {
            conv1: Conv2d::new(w, &format!("{prefix}.conv1"), features, features, 3, 1, 1, true, kind),
            conv2: Conv2d::new(w, &format!("{prefix}.conv2"), features, features, 3, 1, 1, true, kind),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.conv2.forward(&self.conv1.forward(&x.relu()).relu()) + x
    }
}

/// `FeatureFusionBlock`: optional residual merge of a lateral input, a residual unit,
/// bilinear upsampling (align_corners=True) and a 1x1 projection.
pub struct FeatureFusionBlock {
    pub res_conf_unit1: Option<ResidualConvUnit>,
    pub res_conf_unit2: ResidualConvUnit,
    pub out_conv: Conv2d,
}

impl FeatureFusionBlock {
    pub fn new(w: &mut WeightLoader, prefix: &str, features: i64, has_residual: bool, kind: Kind) -> Self {
        FeatureFusionBlock {
            res_conf_unit1: has_residual.then(|| ResidualConvUnit::new(w, &format!("{prefix}.resConfUnit1"), features, kind)),
            res_conf_unit2: ResidualConvUnit::new(w, &format!("{prefix}.resConfUnit2"), features, kind),
            out_conv: Conv2d::new(w, &format!("{prefix}.out_conv"), features, features, 1, 1, 0, true, kind),
        }
    }

    /// `size`: output size; `None` doubles the input (official `scale_factor=2`).
    pub fn forward(&self, x: &Tensor, lateral: Option<&Tensor>, size: Option<(i64, i64)>) -> Tensor {
        let mut y = x.shallow_clone();
        if let (Some(unit), Some(lateral)) = (&self.res_conf_unit1, lateral) {
            y = y + unit.forward(lateral);
        }
        let y = self.res_conf_unit2.forward(&y);
        let (h, w) = size.unwrap_or_else(|| {
            let s = y.size();
            (s[2] * 2, s[3] * 2)
        });
        let y = y.upsample_bilinear2d([h, w], true, None, None);
        self.out_conv.forward(&y)
    }
}
