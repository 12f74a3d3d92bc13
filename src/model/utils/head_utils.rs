//! `model/utils/head_utils.py`: the UV positional embedding added to head feature maps.
use tch::{Device, Kind, Tensor};

use crate::error::Result;

/// (H, W, 2) grid spanning the image plane, normalised by its diagonal (aspect ratio W/H).
pub fn create_uv_grid(width: i64, height: i64, aspect_ratio: f64, device: Device) -> Result<Tensor> {
    let diag = (aspect_ratio * aspect_ratio + 1.0).sqrt();
    let span_x = aspect_ratio / diag;
    let span_y = 1.0 / diag;
    let x_extent = span_x * (width - 1) as f64 / width as f64;
    let y_extent = span_y * (height - 1) as f64 / height as f64;
    let xs = Tensor::f_linspace(-x_extent, x_extent, width, (Kind::Float, device))?;
    let ys = Tensor::f_linspace(-y_extent, y_extent, height, (Kind::Float, device))?;
    let uu = xs.f_unsqueeze(0)?.f_expand([height, width], false)?;
    let vv = ys.f_unsqueeze(1)?.f_expand([height, width], false)?;
    Ok(Tensor::f_stack(&[uu, vv], -1)?)
}

/// 1-D sin/cos embedding of `pos` (M,) into (M, dim).
pub fn make_sincos_pos_embed(dim: i64, pos: &Tensor, omega_0: f64) -> Result<Tensor> {
    let omega = Tensor::f_arange(dim / 2, (Kind::Float, pos.device()))?.f_div_scalar(dim as f64 / 2.0)?;
    // Made on the device (no host copy, so the forward can be captured in a CUDA graph).
    let omega = Tensor::f_full([], omega_0 as f32 as f64, (Kind::Float, pos.device()))?.f_pow(&omega)?.f_reciprocal()?;
    let out = pos.f_reshape([-1, 1])?.f_mul(&omega.f_unsqueeze(0)?)?;
    Ok(Tensor::f_cat(&[out.f_sin()?, out.f_cos()?], 1)?)
}

/// (H, W, 2) grid -> (H, W, dim): x coordinates fill the first half, y the second.
pub fn position_grid_to_embed(grid: &Tensor, dim: i64, omega_0: f64) -> Result<Tensor> {
    let (h, w, _) = grid.size3()?;
    let flat = grid.f_reshape([-1, 2])?;
    let emb_x = make_sincos_pos_embed(dim / 2, &flat.f_select(1, 0)?, omega_0)?;
    let emb_y = make_sincos_pos_embed(dim / 2, &flat.f_select(1, 1)?, omega_0)?;
    Ok(Tensor::f_cat(&[emb_x, emb_y], -1)?.f_reshape([h, w, dim])?)
}

/// Adds the UV embedding (scaled by 0.1) to a (B, C, h, w) map of an image of size W x H.
pub fn add_pos_embed(x: &Tensor, image_width: i64, image_height: i64) -> Result<Tensor> {
    const RATIO: f64 = 0.1;
    const OMEGA_0: f64 = 100.0;
    let (_, c, h, w) = x.size4()?;
    let grid = create_uv_grid(w, h, image_width as f64 / image_height as f64, x.device())?;
    let pe = position_grid_to_embed(&grid, c, OMEGA_0)?.f_mul_scalar(RATIO)?;
    Ok(x.f_add(&pe.f_permute([2, 0, 1])?.f_unsqueeze(0)?.f_to_kind(x.kind())?)?)
}
