//! `model/utils/head_utils.py`: the UV positional embedding added to head feature maps.
use tch::{Device, Kind, Tensor};

/// (H, W, 2) grid spanning the image plane, normalised by its diagonal (aspect ratio W/H).
pub fn create_uv_grid(width: i64, height: i64, aspect_ratio: f64, device: Device) -> Tensor {
    let diag = (aspect_ratio * aspect_ratio + 1.0).sqrt();
    let span_x = aspect_ratio / diag;
    let span_y = 1.0 / diag;
    let x_extent = span_x * (width - 1) as f64 / width as f64;
    let y_extent = span_y * (height - 1) as f64 / height as f64;
    let xs = Tensor::linspace(-x_extent, x_extent, width, (Kind::Float, device));
    let ys = Tensor::linspace(-y_extent, y_extent, height, (Kind::Float, device));
    let uu = xs.unsqueeze(0).expand([height, width], false);
    let vv = ys.unsqueeze(1).expand([height, width], false);
    Tensor::stack(&[uu, vv], -1)
}

/// 1-D sin/cos embedding of `pos` (M,) into (M, dim).
pub fn make_sincos_pos_embed(dim: i64, pos: &Tensor, omega_0: f64) -> Tensor {
    let omega = Tensor::arange(dim / 2, (Kind::Float, pos.device())) / (dim as f64 / 2.0);
    // Made on the device (no host copy, so the forward can be captured in a CUDA graph).
    let omega = Tensor::full([], omega_0 as f32 as f64, (Kind::Float, pos.device())).pow(&omega).reciprocal();
    let out = pos.reshape([-1, 1]) * omega.unsqueeze(0);
    Tensor::cat(&[out.sin(), out.cos()], 1)
}

/// (H, W, 2) grid -> (H, W, dim): x coordinates fill the first half, y the second.
pub fn position_grid_to_embed(grid: &Tensor, dim: i64, omega_0: f64) -> Tensor {
    let (h, w, _) = grid.size3().expect("grid is (H, W, 2)");
    let flat = grid.reshape([-1, 2]);
    let emb_x = make_sincos_pos_embed(dim / 2, &flat.select(1, 0), omega_0);
    let emb_y = make_sincos_pos_embed(dim / 2, &flat.select(1, 1), omega_0);
    Tensor::cat(&[emb_x, emb_y], -1).reshape([h, w, dim])
}

/// Adds the UV embedding (scaled by 0.1) to a (B, C, h, w) map of an image of size W x H.
pub fn add_pos_embed(x: &Tensor, image_width: i64, image_height: i64) -> Tensor {
    const RATIO: f64 = 0.1;
    const OMEGA_0: f64 = 100.0;
    let size = x.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let grid = create_uv_grid(w, h, image_width as f64 / image_height as f64, x.device());
    let pe = position_grid_to_embed(&grid, c, OMEGA_0) * RATIO;
    x + pe.permute([2, 0, 1]).unsqueeze(0).to_kind(x.kind())
}
