//! `layers/rope.py`: 2-D rotary position embedding (half the channels rotate with the row,
//! half with the column).
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// Patch-grid coordinates: (H*W, 2) int64 rows of (y, x), row-major.
pub struct PositionGetter;

impl PositionGetter {
    pub fn positions(height: i64, width: i64, device: Device) -> Result<Tensor> {
        let y = Tensor::f_arange(height, (Kind::Int64, device))?.f_unsqueeze(1)?.f_expand([height, width], false)?;
        let x = Tensor::f_arange(width, (Kind::Int64, device))?.f_unsqueeze(0)?.f_expand([height, width], false)?;
        Ok(Tensor::f_stack(&[y.f_reshape([-1])?, x.f_reshape([-1])?], 1)?)
    }
}

/// Key of a cached cos/sin table pair: feature dim, sequence length, kind, device.
type TableKey = (i64, i64, Kind, Device);

pub struct RotaryPositionEmbedding2D {
    pub base_frequency: f64,
    /// The official rebuilds the tables in every attention call; they depend only on the
    /// key, so they are built once (same operations, same values).
    tables: std::sync::Mutex<Vec<(TableKey, Tensor, Tensor)>>,
}

impl RotaryPositionEmbedding2D {
    pub fn new(frequency: f64) -> Self {
        RotaryPositionEmbedding2D { base_frequency: frequency, tables: std::sync::Mutex::new(Vec::new()) }
    }

    /// `frequency_components`, cached. A table first built during a CUDA graph capture would
    /// hold unexecuted results, so the accelerated runner always runs a shape eagerly first.
    fn cached_components(&self, dim: i64, seq_len: i64, device: Device, kind: Kind) -> Result<(Tensor, Tensor)> {
        let key = (dim, seq_len, kind, device);
        let mut tables = self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, cos, sin)) = tables.iter().find(|(k, _, _)| *k == key) {
            return Ok((cos.shallow_clone(), sin.shallow_clone()));
        }
        let (cos, sin) = self.frequency_components(dim, seq_len, device, kind)?;
        tables.push((key, cos.shallow_clone(), sin.shallow_clone()));
        Ok((cos, sin))
    }

    /// cos and sin tables, (seq_len, dim), computed in fp32 and cast to `kind` like the official.
    fn frequency_components(&self, dim: i64, seq_len: i64, device: Device, kind: Kind) -> Result<(Tensor, Tensor)> {
        let exponents =
            Tensor::f_arange_start_step(0, dim, 2, (Kind::Int64, device))?.f_to_kind(Kind::Float)?.f_div_scalar(dim as f64)?;
        // The official's Python float becomes a float64 0-dim tensor; made on the device here.
        let base = Tensor::f_full([], self.base_frequency, (Kind::Double, device))?;
        let inv_freq = base.f_pow(&exponents)?.f_reciprocal()?;
        let positions = Tensor::f_arange(seq_len, (Kind::Float, device))?;
        let angles = positions.f_unsqueeze(1)?.f_mul(&inv_freq.f_unsqueeze(0)?)?;
        let angles = Tensor::f_cat(&[&angles, &angles], -1)?.f_to_kind(kind)?;
        Ok((angles.f_cos()?, angles.f_sin()?))
    }

    fn rotate_features(x: &Tensor) -> Result<Tensor> {
        let halves = x.f_chunk(2, -1)?;
        Ok(Tensor::f_cat(&[&halves[1].f_neg()?, &halves[0]], -1)?)
    }

    fn apply_1d(tokens: &Tensor, positions: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        // embedding lookup: (B, N) -> (B, 1, N, D)
        let cos = Tensor::f_embedding(cos, positions, -1, false, false)?.f_unsqueeze(1)?;
        let sin = Tensor::f_embedding(sin, positions, -1, false, false)?.f_unsqueeze(1)?;
        Ok(tokens.f_mul(&cos)?.f_add(&Self::rotate_features(tokens)?.f_mul(&sin)?)?)
    }

    /// tokens: (B, heads, N, D); positions: (B, N, 2) int64 (y, x).
    pub fn forward(&self, tokens: &Tensor, positions: &Tensor, max_position: i64) -> Result<Tensor> {
        let (_, _, _, head_dim) = tokens.size4()?;
        let feature_dim = head_dim / 2;
        let (cos, sin) = self.cached_components(feature_dim, max_position + 1, tokens.device(), tokens.kind())?;
        let parts = tokens.f_chunk(2, -1)?;
        let vertical = Self::apply_1d(&parts[0], &positions.f_select(2, 0)?, &cos, &sin)?;
        let horizontal = Self::apply_1d(&parts[1], &positions.f_select(2, 1)?, &cos, &sin)?;
        Ok(Tensor::f_cat(&[vertical, horizontal], -1)?)
    }
}
