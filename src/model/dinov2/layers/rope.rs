//! `layers/rope.py`: 2-D rotary position embedding (half the channels rotate with the row,
//! half with the column).
use tch::{Device, Kind, Tensor};

/// Patch-grid coordinates: (H*W, 2) int64 rows of (y, x), row-major.
pub struct PositionGetter;

impl PositionGetter {
    pub fn positions(height: i64, width: i64, device: Device) -> Tensor {
        let y = Tensor::arange(height, (Kind::Int64, device)).unsqueeze(1).expand([height, width], false);
        let x = Tensor::arange(width, (Kind::Int64, device)).unsqueeze(0).expand([height, width], false);
        Tensor::stack(&[y.reshape([-1]), x.reshape([-1])], 1)
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
    fn cached_components(&self, dim: i64, seq_len: i64, device: Device, kind: Kind) -> (Tensor, Tensor) {
        let key = (dim, seq_len, kind, device);
        let mut tables = self.tables.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, cos, sin)) = tables.iter().find(|(k, _, _)| *k == key) {
            return (cos.shallow_clone(), sin.shallow_clone());
        }
        let (cos, sin) = self.frequency_components(dim, seq_len, device, kind);
        tables.push((key, cos.shallow_clone(), sin.shallow_clone()));
        (cos, sin)
    }

    /// cos and sin tables, (seq_len, dim), computed in fp32 and cast to `kind` like the official.
    fn frequency_components(&self, dim: i64, seq_len: i64, device: Device, kind: Kind) -> (Tensor, Tensor) {
        let exponents = Tensor::arange_start_step(0, dim, 2, (Kind::Int64, device)).to_kind(Kind::Float) / dim as f64;
        // The official's Python float becomes a float64 0-dim tensor; made on the device here.
        let base = Tensor::full([], self.base_frequency, (Kind::Double, device));
        let inv_freq = base.pow(&exponents).reciprocal();
        let positions = Tensor::arange(seq_len, (Kind::Float, device));
        let angles = positions.unsqueeze(1) * inv_freq.unsqueeze(0);
        let angles = Tensor::cat(&[&angles, &angles], -1).to_kind(kind);
        (angles.cos(), angles.sin())
    }

    fn rotate_features(x: &Tensor) -> Tensor {
        let halves = x.chunk(2, -1);
        Tensor::cat(&[&(-&halves[1]), &halves[0]], -1)
    }

    fn apply_1d(tokens: &Tensor, positions: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
        // embedding lookup: (B, N) -> (B, 1, N, D)
        let cos = Tensor::embedding(cos, positions, -1, false, false).unsqueeze(1);
        let sin = Tensor::embedding(sin, positions, -1, false, false).unsqueeze(1);
        tokens * cos + Self::rotate_features(tokens) * sin
    }

    /// tokens: (B, heads, N, D); positions: (B, N, 2) int64 (y, x).
    pub fn forward(&self, tokens: &Tensor, positions: &Tensor, max_position: i64) -> Tensor {
        let feature_dim = tokens.size()[3] / 2;
        let (cos, sin) = self.cached_components(feature_dim, max_position + 1, tokens.device(), tokens.kind());
        let parts = tokens.chunk(2, -1);
        let vertical = Self::apply_1d(&parts[0], &positions.select(2, 0), &cos, &sin);
        let horizontal = Self::apply_1d(&parts[1], &positions.select(2, 1), &cos, &sin);
        Tensor::cat(&[vertical, horizontal], -1)
    }
}
