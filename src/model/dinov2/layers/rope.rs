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

    /// Tables for `RopeTables::apply` at `positions` ((B, N, 2) int64 (y, x)) for heads of
    /// `head_dim` channels: fp32 cos/sin of the same fp32 angles as the official's fp32 path.
    pub fn gathered_tables(&self, positions: &Tensor, max_position: i64, head_dim: i64) -> Result<RopeTables> {
        let feature_dim = head_dim / 2;
        let quarter = feature_dim / 2;
        let (cos, sin) = self.cached_components(feature_dim, max_position + 1, positions.device(), Kind::Float)?;
        let (mut cos_parts, mut sin_parts) = (Vec::with_capacity(2), Vec::with_capacity(4));
        for axis in 0..2 {
            let at = positions.f_select(2, axis)?;
            cos_parts.push(Tensor::f_embedding(&cos, &at, -1, false, false)?);
            let sin = Tensor::f_embedding(&sin, &at, -1, false, false)?;
            // rotate_features: the first half of each part takes minus the second half.
            sin_parts.push(sin.f_narrow(-1, 0, quarter)?.f_neg()?);
            sin_parts.push(sin.f_narrow(-1, quarter, quarter)?);
        }
        // Each half's two quarters swapped: made on the device (no host copy, so that a CUDA
        // graph can capture it).
        let perm = Tensor::f_arange(head_dim, (Kind::Int64, positions.device()))?
            .f_reshape([2, 2, quarter])?
            .f_flip([1])?
            .f_reshape([head_dim])?;
        Ok(RopeTables {
            cos: Tensor::f_cat(&cos_parts, -1)?.f_unsqueeze(1)?,
            sin: Tensor::f_cat(&sin_parts, -1)?.f_unsqueeze(1)?,
            perm,
        })
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

/// 2-D RoPE for one set of positions, gathered once per forward for every block:
/// `x * cos + x[perm] * sin` (three passes; `forward` takes about fifteen per tensor).
pub struct RopeTables {
    /// (B, 1, N, D) fp32: the row's cos for the first half of the channels, the column's after.
    cos: Tensor,
    /// (B, 1, N, D) fp32, the sign of `rotate_features` folded in.
    sin: Tensor,
    /// (D,) int64: the channel each channel rotates with.
    perm: Tensor,
}

impl RopeTables {
    /// (B, 1, N, D) fp32 cos table.
    pub fn cos(&self) -> &Tensor {
        &self.cos
    }

    /// (B, 1, N, D) fp32 sin table, the sign of `rotate_features` folded in.
    pub fn sin(&self) -> &Tensor {
        &self.sin
    }

    /// `tokens` (B, heads, N, D) rotated, in `kind`: computed in fp32 and rounded once.
    pub fn apply(&self, tokens: &Tensor, kind: Kind) -> Result<Tensor> {
        let rotated = tokens.f_index_select(3, &self.perm)?;
        let straight = tokens.f_mul(&self.cos)?;
        let out = Tensor::f_empty(straight.size(), (kind, tokens.device()))?;
        Ok(straight.f_addcmul_out(&out, &rotated, &self.sin)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gathered tables give the official rotation (fp32, to rounding).
    #[test]
    fn gathered_tables_rotate_like_the_official() {
        let rope = RotaryPositionEmbedding2D::new(100.0);
        let (b, heads, h, w, d) = (2, 3, 5, 7, 16);
        let grid = PositionGetter::positions(h, w, Device::Cpu).unwrap();
        let positions = grid.unsqueeze(0).expand([b, h * w, 2], false).contiguous();
        let tokens = Tensor::randn([b, heads, h * w, d], (Kind::Float, Device::Cpu));
        let official = rope.forward(&tokens, &positions, h.max(w)).unwrap();
        let tables = rope.gathered_tables(&positions, h.max(w), d).unwrap();
        let fused = tables.apply(&tokens, Kind::Float).unwrap();
        let diff = (&fused - &official).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "fused RoPE differs from the official by {diff}");
        let bf16 = tables.apply(&tokens.to_kind(Kind::BFloat16), Kind::BFloat16).unwrap();
        assert_eq!(bf16.kind(), Kind::BFloat16);
    }
}
