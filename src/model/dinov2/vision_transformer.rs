//! `dinov2/vision_transformer.py`: DINOv2 with DA3's camera token, alternating
//! view-local / scene-global attention, QK-norm and 2-D RoPE. With `alt_start` disabled
//! (metric and mono models) it is a plain DINOv2: views are independent, no camera token.
//!
//! The forward runs in stages: `prepare` (patch embedding, positions) gives a `BlockState`,
//! `run_blocks` is the purely numerical block loop on it, `finish` collects the outputs. A
//! `BlockRunner` in the execution profile may run the blocks elsewhere (e.g. over several
//! devices) between the first and the last stage.
use std::ops::Range;

use tch::{Device, Kind, Tensor};

use super::layers::attention::RopePositions;
use super::layers::block::BlockConfig;
use super::layers::{Block, PatchEmbed, PositionGetter, RotaryPositionEmbedding2D};
use crate::config::BackboneConfig;
use crate::error::{Error, Result};
use crate::model::execution::Execution;
use crate::model::utils::shape_cache::ShapeCache;
use crate::model::reference_view_selector::{
    original_order, original_order_on_device, reference_first_order, reference_first_order_on_device,
    select_reference_view, select_reference_view_on_device, RefViewStrategy,
};
use crate::nn::LayerNorm;
use crate::weights::WeightLoader;

/// Views at or above this count get a reference view chosen and moved first
/// (official `THRESH_FOR_REF_SELECTION`).
pub const THRESH_FOR_REF_SELECTION: i64 = 3;

/// One taken layer: patch features for the head and the camera token.
pub struct LayerOutput {
    /// (S, P, C_out): `[local, norm(global)]` for each patch token.
    pub features: Tensor,
    /// (S, C_out): token 0 before normalisation.
    pub camera_token: Tensor,
}

/// What the backbone hands on, plus what tests and callers may inspect.
pub struct BackboneOutput {
    pub layers: Vec<LayerOutput>,
    /// Reference view chosen for this scene, if selection ran (and was read back).
    pub reference_view: Option<i64>,
    /// Requested blocks' outputs (official `aux` features): (block index, (S, P, C)) with the
    /// final norm applied and the camera token dropped, in input view order.
    pub exported: Vec<(usize, Tensor)>,
}

/// A taken block's output as the block left it: the residual stream and, with `cat_token`,
/// the last view-local block's output, in the blocks' view order. Shallow: the block loop
/// writes into the residual stream in place (the camera token), so a taken block is finished
/// (`finish_layer`) before the next block runs.
pub struct TakenBlock {
    /// (S, 1 + P, C) the last view-local block's output (`cat_token`), else `None`.
    pub local: Option<Tensor>,
    /// (S, 1 + P, C) the block's output.
    pub global: Tensor,
}

impl TakenBlock {
    /// The same block output on `device`.
    pub fn to_device(&self, device: Device) -> Result<TakenBlock> {
        Ok(TakenBlock {
            local: self.local.as_ref().map(|t| t.f_to_device(device)).transpose()?,
            global: self.global.f_to_device(device)?,
        })
    }
}

/// The activations of one scene between the backbone's blocks.
pub struct BlockState {
    /// (S, 1 + P, C) residual stream.
    pub x: Tensor,
    /// Output of the last view-local block: the local half of the taken layers.
    pub local_x: Tensor,
    /// (S, 1 + P, 2) RoPE positions of view-local attention.
    pub local_positions: Tensor,
    /// (1, S * (1 + P), 2) RoPE positions of scene-global attention.
    pub global_positions: Tensor,
    /// Puts reference-first views back in input order, once views were reordered.
    pub restore_order: Option<Tensor>,
    /// Reference view, when chosen and read back to the host.
    pub reference_view: Option<i64>,
    /// Outputs of taken blocks not yet finished into `layers` (`restore_order` puts them
    /// in input view order).
    pub taken: Vec<TakenBlock>,
    /// Finished taken layers, in order.
    pub layers: Vec<LayerOutput>,
    /// (block index, raw output) of the blocks to export, on the device that ran them.
    pub exported: Vec<(usize, Tensor)>,
    views: i64,
    tokens: i64,
    local_max_position: i64,
    camera_tokens: Option<Tensor>,
    strategy: RefViewStrategy,
    export_layers: Vec<usize>,
}

impl BlockState {
    /// Moves what the next blocks work on (residual stream, positions, view order, given
    /// camera tokens) to `device`; taken layers and exports stay where they were made.
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        let moved = |t: &Tensor| -> Result<Tensor> {
            Ok(if t.device() == device { t.shallow_clone() } else { t.f_to_device(device)? })
        };
        self.x = moved(&self.x)?;
        self.local_x = moved(&self.local_x)?;
        self.local_positions = moved(&self.local_positions)?;
        self.global_positions = moved(&self.global_positions)?;
        self.restore_order = self.restore_order.as_ref().map(moved).transpose()?;
        self.camera_tokens = self.camera_tokens.as_ref().map(moved).transpose()?;
        Ok(())
    }
}

pub struct DinoVisionTransformer {
    pub cfg: BackboneConfig,
    pub patch_embed: PatchEmbed,
    pub cls_token: Tensor,
    /// (1, 2, C): learned camera token for the reference view and for the others; only
    /// with alternating attention.
    pub camera_token: Option<Tensor>,
    pub pos_embed: Tensor,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    rope: RotaryPositionEmbedding2D,
    /// Position embeddings resampled to a patch grid, by grid: the bicubic resampling of 1024
    /// channels runs as a slow, barely parallel kernel (8 ms per forward of da3-large on an
    /// H100, half the GPU time of one view) and depends only on the grid. Same operations,
    /// same values. Never evicted (a CUDA graph captured with an entry reads its memory);
    /// past `POS_CACHE_CAPACITY` grids it is recomputed instead.
    pos_cache: ShapeCache<(i64, i64)>,
}

/// Patch grids whose resampled position embeddings are kept (a few MB each).
const POS_CACHE_CAPACITY: usize = 16;

impl DinoVisionTransformer {
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &BackboneConfig, kind: Kind) -> Result<Self> {
        let dim = cfg.embed_dim;
        let patch = BackboneConfig::PATCH_SIZE;
        let grid = BackboneConfig::PRETRAIN_IMG_SIZE / patch;
        let blocks = (0..cfg.depth)
            .map(|i| {
                let block_cfg = BlockConfig {
                    dim,
                    num_heads: cfg.num_heads,
                    mlp_ratio: BackboneConfig::MLP_RATIO,
                    swiglu: cfg.swiglu(),
                    qk_norm: cfg.qknorm_start.is_some_and(|start| i >= start),
                    rope: cfg.rope_start.is_some_and(|start| i >= start),
                    ln_eps: 1e-6,
                };
                Block::new(w, &format!("{prefix}.blocks.{i}"), &block_cfg, kind)
            })
            .collect::<Result<_>>()?;
        Ok(DinoVisionTransformer {
            cfg: cfg.clone(),
            patch_embed: PatchEmbed::new(w, &format!("{prefix}.patch_embed"), patch, 3, dim, kind)?,
            cls_token: w.take(&format!("{prefix}.cls_token"), &[1, 1, dim], Kind::Float)?,
            camera_token: match cfg.alt_start {
                Some(_) => Some(w.take(&format!("{prefix}.camera_token"), &[1, 2, dim], Kind::Float)?),
                None => None,
            },
            pos_embed: w.take(&format!("{prefix}.pos_embed"), &[1, grid * grid + 1, dim], Kind::Float)?,
            blocks,
            // The final norm keeps nn.LayerNorm's default epsilon (blocks use 1e-6).
            norm: LayerNorm::new(w, &format!("{prefix}.norm"), dim, LayerNorm::DEFAULT_EPS)?,
            rope: RotaryPositionEmbedding2D::new(BackboneConfig::ROPE_FREQUENCY),
            pos_cache: ShapeCache::new(POS_CACHE_CAPACITY, i64::MAX),
        })
    }

    /// The device holding this backbone's weights.
    pub fn device(&self) -> Device {
        self.pos_embed.device()
    }

    /// `interpolate_pos_encoding`, cached by patch grid (see `pos_cache`). An entry first
    /// made during a CUDA graph capture would hold unexecuted results, so the accelerated
    /// runner always runs a shape eagerly first.
    fn cached_pos_encoding(&self, height: i64, width: i64) -> Result<Tensor> {
        self.pos_cache.get_or_make((height, width), || self.interpolate_pos_encoding(height, width))
    }

    /// Bicubic resampling of the 37x37 learned grid to the input's patch grid, with the
    /// official 0.1 offset on the scale factors.
    fn interpolate_pos_encoding(&self, height: i64, width: i64) -> Result<Tensor> {
        let patch = BackboneConfig::PATCH_SIZE;
        let n = self.pos_embed.size3()?.1 - 1;
        let m = (n as f64).sqrt() as i64;
        let (h0, w0) = (height / patch, width / patch);
        if h0 * w0 == n && height == width {
            return Ok(self.pos_embed.shallow_clone());
        }
        let dim = self.cfg.embed_dim;
        let class_pos = self.pos_embed.f_narrow(1, 0, 1)?;
        let grid = self.pos_embed.f_narrow(1, 1, n)?.f_reshape([1, m, m, dim])?.f_permute([0, 3, 1, 2])?;
        const INTERPOLATE_OFFSET: f64 = 0.1;
        let sy = (h0 as f64 + INTERPOLATE_OFFSET) / m as f64;
        let sx = (w0 as f64 + INTERPOLATE_OFFSET) / m as f64;
        let patch_pos = grid.f_upsample_bicubic2d([h0, w0], false, sy, sx)?;
        let patch_pos = patch_pos.f_permute([0, 2, 3, 1])?.f_reshape([1, -1, dim])?;
        Ok(Tensor::f_cat(&[class_pos, patch_pos], 1)?)
    }

    /// (S, 3, H, W) -> (S, 1 + P, C) tokens with positions added.
    fn prepare_tokens(&self, x: &Tensor) -> Result<Tensor> {
        let (s, _, h, w) = x.size4()?;
        let patches = self.patch_embed.forward(x)?;
        let cls = self.cls_token.f_expand([s, 1, self.cfg.embed_dim], false)?;
        // cat promotes reduced-precision patch tokens to fp32, as under autocast.
        Ok(Tensor::f_cat(&[cls, patches.f_to_kind(Kind::Float)?], 1)?.f_add(&self.cached_pos_encoding(h, w)?)?)
    }

    /// RoPE positions for local attention (patch grid + 1, special token at 0) and for
    /// global attention (every patch at 1, special token at 0), per view: (S, 1 + P, 2).
    fn rope_positions(views: i64, h0: i64, w0: i64, device: Device) -> Result<(Tensor, Tensor)> {
        let grid = PositionGetter::positions(h0, w0, device)?.f_add_scalar(1i64)?;
        let special = Tensor::f_zeros([1, 2], (Kind::Int64, device))?;
        let local = Tensor::f_cat(&[&special, &grid], 0)?;
        let global = Tensor::f_cat(&[&special, &grid.f_ones_like()?], 0)?;
        let expand = |t: Tensor| -> Result<Tensor> { Ok(t.f_unsqueeze(0)?.f_expand([views, -1, -1], false)?.f_contiguous()?) };
        Ok((expand(local)?, expand(global)?))
    }

    /// Runs the blocks on one scene of S views, (S, 3, H, W) normalised images, as `exec`
    /// says. `camera_tokens`: (S, C) tokens replacing the learned camera token
    /// (pose-conditioned input). `export_layers`: blocks whose outputs to return as well.
    pub fn forward(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
        export_layers: &[usize],
        exec: Execution<'_>,
    ) -> Result<BackboneOutput> {
        let mut state = self.prepare(images, camera_tokens, strategy, export_layers)?;
        match exec.blocks {
            None => self.run_all_blocks(&mut state, exec)?,
            Some(runner) => runner.run(self, &mut state, exec)?,
        }
        self.finish(state)
    }

    /// The stage before the blocks: tokens with positions, RoPE positions.
    pub fn prepare(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
        export_layers: &[usize],
    ) -> Result<BlockState> {
        let (s, _, h, w) = images.size4()?;
        let patch = BackboneConfig::PATCH_SIZE;
        let (h0, w0) = (h / patch, w / patch);
        let x = self.prepare_tokens(images)?;
        let tokens = x.size3()?.1;
        let (local_positions, global_positions) = Self::rope_positions(s, h0, w0, images.device())?;
        Ok(BlockState {
            local_x: x.shallow_clone(),
            x,
            local_positions,
            global_positions: global_positions.f_reshape([1, s * tokens, 2])?,
            restore_order: None,
            reference_view: None,
            taken: Vec::with_capacity(1),
            layers: Vec::with_capacity(self.cfg.out_layers.len()),
            exported: Vec::with_capacity(export_layers.len()),
            views: s,
            tokens,
            local_max_position: h0.max(w0),
            camera_tokens: camera_tokens.map(Tensor::shallow_clone),
            strategy,
            export_layers: export_layers.to_vec(),
        })
    }

    /// Every block here, in order, each taken layer finished as soon as its block ran.
    pub fn run_all_blocks(&self, state: &mut BlockState, exec: Execution<'_>) -> Result<()> {
        for segment in self.segments(0..self.blocks.len()) {
            self.run_blocks(state, segment, exec)?;
            for taken in std::mem::take(&mut state.taken) {
                let layer = self.finish_layer(&taken, state.restore_order.as_ref(), exec)?;
                state.layers.push(layer);
            }
        }
        Ok(())
    }

    /// `blocks` split right after each taken block, so that a taken layer can be finished
    /// (and its raw output released) before the next block runs.
    pub fn segments(&self, blocks: Range<usize>) -> Vec<Range<usize>> {
        let mut segments = Vec::new();
        let mut start = blocks.start;
        for i in blocks.clone() {
            if self.cfg.out_layers.contains(&i) {
                segments.push(start..i + 1);
                start = i + 1;
            }
        }
        if start < blocks.end {
            segments.push(start..blocks.end);
        }
        segments
    }

    /// Runs `blocks` on `state`, wherever its tensors are: the numerical loop (reference
    /// view selection, camera token, alternating local/global attention). Outputs of taken
    /// blocks are left in `state.taken`, exported ones in `state.exported`.
    pub fn run_blocks(&self, state: &mut BlockState, blocks: Range<usize>, exec: Execution<'_>) -> Result<()> {
        let cfg = &self.cfg;
        let (s, tokens, dim) = (state.views, state.tokens, cfg.embed_dim);
        let alt_start = cfg.alt_start;
        if blocks.end > self.blocks.len() {
            return Err(Error::InvalidArgument(format!("blocks {blocks:?} of a backbone of {}", self.blocks.len())));
        }
        // Gathered once here for every block of this call (`Execution::fused_glue`).
        let head_dim = dim / cfg.num_heads;
        let (local_tables, global_tables) = if exec.fused_glue {
            (
                Some(self.rope.gathered_tables(&state.local_positions, state.local_max_position, head_dim)?),
                Some(self.rope.gathered_tables(&state.global_positions, 1, head_dim)?),
            )
        } else {
            (None, None)
        };
        for i in blocks {
            exec.check_stop(|| format!("before backbone block {i} of {}", self.blocks.len()))?;
            let block = &self.blocks[i];
            if alt_start == Some(i + 1) && s >= THRESH_FOR_REF_SELECTION && state.camera_tokens.is_none() {
                let order = if exec.reference_on_device {
                    let reference = select_reference_view_on_device(&state.x, state.strategy)?;
                    state.restore_order = Some(original_order_on_device(s, &reference)?);
                    reference_first_order_on_device(s, &reference)?
                } else {
                    let reference = select_reference_view(&state.x, state.strategy)?;
                    state.reference_view = Some(reference);
                    let device = state.x.device();
                    state.restore_order = Some(Tensor::f_from_slice(&original_order(s, reference))?.f_to_device(device)?);
                    Tensor::f_from_slice(&reference_first_order(s, reference))?.f_to_device(device)?
                };
                state.x = state.x.f_index_select(0, &order)?;
                state.local_x = state.local_x.f_index_select(0, &order)?;
            }
            if alt_start == Some(i) {
                let cam = match &state.camera_tokens {
                    Some(given) => Some(given.f_to_kind(Kind::Float)?),
                    None => self.learned_camera_tokens(s)?,
                };
                if let Some(cam) = cam {
                    // In place, like the official `x[:, :, 0] = cam_token`.
                    state.x.f_select(1, 0)?.f_copy_(&cam)?;
                }
            }
            if alt_start.is_some_and(|start| i >= start) && i % 2 == 1 {
                let rope =
                    RopePositions { positions: &state.global_positions, max_position: 1, tables: global_tables.as_ref() };
                let scene = state.x.f_reshape([1, s * tokens, dim])?;
                state.x = block.forward(&scene, Some((&self.rope, rope)), exec.attention, exec.fused_glue, exec.glue)?.f_reshape([s, tokens, dim])?;
            } else {
                // This block's output becomes the local half of the next taken layers: the
                // previous one is released now, not after the block (one residual stream less
                // at the peak of the block after a global one).
                state.local_x = state.x.shallow_clone();
                let rope = RopePositions {
                    positions: &state.local_positions,
                    max_position: state.local_max_position,
                    tables: local_tables.as_ref(),
                };
                state.x = block.forward(&state.x, Some((&self.rope, rope)), exec.attention, exec.fused_glue, exec.glue)?;
                state.local_x = state.x.shallow_clone();
            }
            if cfg.out_layers.contains(&i) {
                let local = cfg.cat_token.then(|| state.local_x.shallow_clone());
                state.taken.push(TakenBlock { local, global: state.x.shallow_clone() });
            }
            if state.export_layers.contains(&i) {
                state.exported.push((i, state.x.shallow_clone()));
            }
        }
        Ok(())
    }

    /// The stage after the blocks: exported outputs normalised, in input view order, on this
    /// backbone's device, in the order asked for.
    pub fn finish(&self, state: BlockState) -> Result<BackboneOutput> {
        let BlockState { mut exported, restore_order, layers, reference_view, export_layers, tokens, .. } = state;
        // In the order asked for (the official labels them in that order but collects them in
        // block order, so an unsorted request gets the wrong labels there).
        exported.sort_by_key(|(i, _)| export_layers.iter().position(|l| l == i));
        let exported = exported
            .into_iter()
            .map(|(i, out)| {
                // The official leaves these in the reference-first order when views were
                // reordered; they are returned here in input order, like every other output.
                let out = out.f_to_device(self.device())?;
                let out = match &restore_order {
                    Some(order) => out.f_index_select(0, &order.f_to_device(out.device())?)?,
                    None => out,
                };
                Ok((i, self.norm.forward(&out)?.f_narrow(1, 1, tokens - 1)?))
            })
            .collect::<Result<_>>()?;
        Ok(BackboneOutput { layers, reference_view, exported })
    }

    /// (S, C): the learned reference-view token for view 0, the other token for the rest;
    /// `None` without alternating attention (no camera token then).
    fn learned_camera_tokens(&self, views: i64) -> Result<Option<Tensor>> {
        let Some(learned) = self.camera_token.as_ref() else { return Ok(None) };
        let reference = learned.f_select(1, 0)?;
        let others = learned.f_select(1, 1)?.f_expand([views - 1, self.cfg.embed_dim], false)?;
        Ok(Some(Tensor::f_cat(&[reference, others], 0)?))
    }

    /// A taken block's output -> camera token (token 0 as is, `[local, global]` with
    /// `cat_token`) and features (patch tokens, `[local, norm(global)]` with `cat_token`, in
    /// `exec.features_kind`), in input view order (`restore_order`), on `taken`'s device.
    ///
    /// Both are new compact tensors, written in their final kind: nothing keeps the block's
    /// fp32 output alive (a camera token viewing it would hold 2 x 4 bytes per channel and
    /// token of every taken layer until the head is done), and the concatenation is never
    /// made in fp32 first. The values are the official's: copies, a per-token LayerNorm and
    /// one rounding to the features' kind; the view order is restored last.
    pub fn finish_layer(&self, taken: &TakenBlock, restore_order: Option<&Tensor>, exec: Execution<'_>) -> Result<LayerOutput> {
        let global = &taken.global;
        let (views, tokens, dim) = global.size3()?;
        let patches = tokens - 1;
        let kind = exec.features_kind.unwrap_or(Kind::Float);
        let normed = self.norm.forward(global)?;
        let (camera_token, features) = match &taken.local {
            Some(local) => {
                let camera_token = Tensor::f_cat(&[local.f_select(1, 0)?, global.f_select(1, 0)?], -1)?;
                let features = Tensor::f_empty([views, patches, 2 * dim], (kind, global.device()))?;
                features.f_narrow(2, 0, dim)?.f_copy_(&local.f_narrow(1, 1, patches)?)?;
                features.f_narrow(2, dim, dim)?.f_copy_(&normed.f_narrow(1, 1, patches)?)?;
                (camera_token, features)
            }
            None => (crate::nn::copy(&global.f_select(1, 0)?)?, normed.f_narrow(1, 1, patches)?.f_to_kind(kind)?),
        };
        drop(normed);
        Ok(match restore_order {
            Some(order) => LayerOutput {
                camera_token: camera_token.f_index_select(0, order)?,
                features: features.f_index_select(0, order)?,
            },
            None => LayerOutput { camera_token, features },
        })
    }
}
