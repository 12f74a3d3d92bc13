//! `dinov2/vision_transformer.py`: DINOv2 with DA3's camera token, alternating
//! view-local / scene-global attention, QK-norm and 2-D RoPE. With `alt_start` disabled
//! (metric and mono models) it is a plain DINOv2: views are independent, no camera token.
use tch::{Device, Kind, Tensor};

use super::layers::attention::RopePositions;
use super::layers::block::BlockConfig;
use super::layers::{Block, PatchEmbed, PositionGetter, RotaryPositionEmbedding2D};
use crate::config::BackboneConfig;
use crate::model::reference_view_selector::{
    original_order, original_order_on_device, reference_first_order, reference_first_order_on_device,
    select_reference_view, select_reference_view_on_device,
};
use crate::nn::LayerNorm;
use crate::options::RefViewStrategy;
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
    /// Reference view chosen for this scene, if selection ran.
    pub reference_view: Option<i64>,
    /// Requested blocks' outputs (official `aux` features): (block index, (S, P, C)) with the
    /// final norm applied and the camera token dropped, in input view order.
    pub exported: Vec<(usize, Tensor)>,
}

/// Where the blocks of one scene run: block `i` on `backbones[block_backbone[i]]`, replicas
/// of the same weights on different devices (each model replica holds all of them).
pub struct BlockPlacement<'a> {
    pub backbones: Vec<&'a DinoVisionTransformer>,
    pub block_backbone: Vec<usize>,
}

impl<'a> BlockPlacement<'a> {
    /// Consecutive blocks in equal shares over `backbones` (the first gets the first share).
    pub fn even(backbones: Vec<&'a DinoVisionTransformer>) -> Self {
        let depth = backbones[0].blocks.len();
        let n = backbones.len();
        BlockPlacement { block_backbone: (0..depth).map(|i| i * n / depth).collect(), backbones }
    }

    fn backbone_of(&self, block: usize) -> &'a DinoVisionTransformer {
        self.backbones[self.block_backbone[block]]
    }

    /// The backbone whose device keeps taken layer `k` of `taken`: equal shares in order.
    fn keeper_of(&self, k: usize, taken: usize) -> &'a DinoVisionTransformer {
        self.backbones[k * self.backbones.len() / taken.max(1)]
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
    /// Choose the reference view without reading it back to the host (same view, but
    /// `BackboneOutput::reference_view` stays `None`): the accelerated runner's setting.
    pub reference_on_device: bool,
    /// Kind of the features handed to the head (`None`: fp32, as the official). The
    /// accelerated runner with a reduced-precision head stores them in its kind: half the
    /// memory of the four kept layers, which dominate at many views.
    pub features_kind: Option<Kind>,
    /// Position embeddings resampled to a patch grid, by grid: the bicubic resampling of 1024
    /// channels runs as a slow, barely parallel kernel (8 ms per forward of da3-large on an
    /// H100, half the GPU time of one view) and depends only on the grid. Same operations,
    /// same values. Never evicted (a CUDA graph captured with an entry reads its memory);
    /// past `POS_CACHE_CAPACITY` grids it is recomputed instead.
    pos_cache: std::sync::Mutex<Vec<((i64, i64), Tensor)>>,
}

/// Patch grids whose resampled position embeddings are kept (a few MB each).
const POS_CACHE_CAPACITY: usize = 16;

impl DinoVisionTransformer {
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &BackboneConfig, kind: Kind) -> Self {
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
            .collect();
        DinoVisionTransformer {
            cfg: cfg.clone(),
            patch_embed: PatchEmbed::new(w, &format!("{prefix}.patch_embed"), patch, 3, dim, kind),
            cls_token: w.take(&format!("{prefix}.cls_token"), &[1, 1, dim], Kind::Float),
            camera_token: cfg.alt_start.map(|_| w.take(&format!("{prefix}.camera_token"), &[1, 2, dim], Kind::Float)),
            pos_embed: w.take(&format!("{prefix}.pos_embed"), &[1, grid * grid + 1, dim], Kind::Float),
            blocks,
            // The final norm keeps nn.LayerNorm's default epsilon (blocks use 1e-6).
            norm: LayerNorm::new(w, &format!("{prefix}.norm"), dim, LayerNorm::DEFAULT_EPS),
            rope: RotaryPositionEmbedding2D::new(BackboneConfig::ROPE_FREQUENCY),
            reference_on_device: false,
            features_kind: None,
            pos_cache: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Bicubic resampling of the 37x37 learned grid to the input's patch grid, with the
    /// official 0.1 offset on the scale factors.
    /// `interpolate_pos_encoding`, cached by patch grid (see `pos_cache`). An entry first
    /// made during a CUDA graph capture would hold unexecuted results, so the accelerated
    /// runner always runs a shape eagerly first.
    fn cached_pos_encoding(&self, height: i64, width: i64) -> Tensor {
        let key = (height, width);
        let mut cache = self.pos_cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, pos)) = cache.iter().find(|(k, _)| *k == key) {
            return pos.shallow_clone();
        }
        let pos = self.interpolate_pos_encoding(height, width);
        if cache.len() < POS_CACHE_CAPACITY {
            cache.push((key, pos.shallow_clone()));
        }
        pos
    }

    fn interpolate_pos_encoding(&self, height: i64, width: i64) -> Tensor {
        let patch = BackboneConfig::PATCH_SIZE;
        let n = self.pos_embed.size()[1] - 1;
        let m = (n as f64).sqrt() as i64;
        let (h0, w0) = (height / patch, width / patch);
        if h0 * w0 == n && height == width {
            return self.pos_embed.shallow_clone();
        }
        let dim = self.cfg.embed_dim;
        let class_pos = self.pos_embed.narrow(1, 0, 1);
        let grid = self.pos_embed.narrow(1, 1, n).reshape([1, m, m, dim]).permute([0, 3, 1, 2]);
        const INTERPOLATE_OFFSET: f64 = 0.1;
        let sy = (h0 as f64 + INTERPOLATE_OFFSET) / m as f64;
        let sx = (w0 as f64 + INTERPOLATE_OFFSET) / m as f64;
        let patch_pos = grid.upsample_bicubic2d([h0, w0], false, sy, sx);
        let patch_pos = patch_pos.permute([0, 2, 3, 1]).reshape([1, -1, dim]);
        Tensor::cat(&[class_pos, patch_pos], 1)
    }

    /// (S, 3, H, W) -> (S, 1 + P, C) tokens with positions added.
    fn prepare_tokens(&self, x: &Tensor) -> Tensor {
        let (s, _, h, w) = x.size4().expect("images are (S, 3, H, W)");
        let patches = self.patch_embed.forward(x);
        let cls = self.cls_token.expand([s, 1, self.cfg.embed_dim], false);
        // cat promotes reduced-precision patch tokens to fp32, as under autocast.
        Tensor::cat(&[cls, patches.to_kind(Kind::Float)], 1) + self.cached_pos_encoding(h, w)
    }

    /// RoPE positions for local attention (patch grid + 1, special token at 0) and for
    /// global attention (every patch at 1, special token at 0), per view: (S, 1 + P, 2).
    fn rope_positions(views: i64, h0: i64, w0: i64, device: Device) -> (Tensor, Tensor) {
        let grid = PositionGetter::positions(h0, w0, device) + 1;
        let special = Tensor::zeros([1, 2], (Kind::Int64, device));
        let local = Tensor::cat(&[&special, &grid], 0);
        let global = Tensor::cat(&[&special, &grid.ones_like()], 0);
        let expand = |t: Tensor| t.unsqueeze(0).expand([views, -1, -1], false).contiguous();
        (expand(local), expand(global))
    }

    /// Runs the blocks on one scene of S views, (S, 3, H, W) normalised images.
    /// `camera_tokens`: (S, C) tokens replacing the learned camera token (pose-conditioned input).
    pub fn forward(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
    ) -> BackboneOutput {
        self.forward_with_exports(images, camera_tokens, strategy, &[])
    }

    /// `forward`, also returning the outputs of the blocks in `export_layers`.
    pub fn forward_with_exports(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
        export_layers: &[usize],
    ) -> BackboneOutput {
        self.forward_placed(images, camera_tokens, strategy, export_layers, None)
    }

    /// `forward_with_exports` with the blocks run where `placement` says (one scene split
    /// over several devices); `None` runs every block here. The taken layers are kept in
    /// equal shares over the devices (the head fetches them chunk by chunk); exported
    /// features come back to this backbone's device.
    pub fn forward_placed(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
        export_layers: &[usize],
        placement: Option<&BlockPlacement<'_>>,
    ) -> BackboneOutput {
        let (s, _, h, w) = images.size4().expect("images are (S, 3, H, W)");
        let patch = BackboneConfig::PATCH_SIZE;
        let (h0, w0) = (h / patch, w / patch);
        let cfg = &self.cfg;
        let dim = cfg.embed_dim;
        let mut x = self.prepare_tokens(images);
        let tokens = x.size()[1];
        let (mut local_pos, global_pos) = Self::rope_positions(s, h0, w0, images.device());
        let mut global_pos = global_pos.reshape([1, s * tokens, 2]);
        let local_max = h0.max(w0);

        let mut local_x = x.shallow_clone();
        let mut reference_view = None;
        // Puts reference-first views back in input order, once views were reordered.
        let mut restore_order: Option<Tensor> = None;
        let mut layers = Vec::with_capacity(4);
        let mut exported = Vec::with_capacity(export_layers.len());
        for i in 0..self.blocks.len() {
            // The backbone replica holding this block (this one unless placed elsewhere).
            let vit = placement.map_or(self, |p| p.backbone_of(i));
            let block = &vit.blocks[i];
            if placement.is_some() {
                let device = vit.pos_embed.device();
                if x.device() != device {
                    // Moving to the next device: the activations and the positions follow.
                    x = x.to_device(device);
                    local_x = local_x.to_device(device);
                    local_pos = local_pos.to_device(device);
                    global_pos = global_pos.to_device(device);
                }
            }
            let alt_start = cfg.alt_start;
            if alt_start == Some(i + 1) && s >= THRESH_FOR_REF_SELECTION && camera_tokens.is_none() {
                let order = if self.reference_on_device {
                    let reference = select_reference_view_on_device(&x, strategy);
                    restore_order = Some(original_order_on_device(s, &reference));
                    reference_first_order_on_device(s, &reference)
                } else {
                    let reference = select_reference_view(&x, strategy);
                    reference_view = Some(reference);
                    restore_order = Some(Tensor::from_slice(&original_order(s, reference)).to_device(x.device()));
                    Tensor::from_slice(&reference_first_order(s, reference)).to_device(x.device())
                };
                x = x.index_select(0, &order);
                local_x = local_x.index_select(0, &order);
            }
            if alt_start == Some(i) {
                let cam = camera_tokens.map(|t| t.to_kind(Kind::Float)).or_else(|| self.learned_camera_tokens(s));
                if let Some(cam) = cam {
                    // In place, like the official `x[:, :, 0] = cam_token`.
                    x.select(1, 0).copy_(&cam);
                }
            }
            if alt_start.is_some_and(|start| i >= start) && i % 2 == 1 {
                let rope = RopePositions { positions: &global_pos, max_position: 1 };
                x = block.forward(&x.reshape([1, s * tokens, dim]), Some((&vit.rope, rope))).reshape([s, tokens, dim]);
            } else {
                let rope = RopePositions { positions: &local_pos, max_position: local_max };
                x = block.forward(&x, Some((&vit.rope, rope)));
                local_x = x.shallow_clone();
            }
            if cfg.out_layers.contains(&i) {
                let mut out = if cfg.cat_token { Tensor::cat(&[&local_x, &x], -1) } else { x.shallow_clone() };
                if let Some(order) = &restore_order {
                    out = out.index_select(0, &order.to_device(out.device()));
                }
                match placement {
                    None => layers.push(self.finish_layer(out)),
                    Some(p) => {
                        // Spread the kept layers over the devices (taken layers cluster in the
                        // last blocks), and copy the camera token out so the raw output's
                        // memory is freed: the largest part of a long scene's memory.
                        let keeper = p.keeper_of(layers.len(), cfg.out_layers.len());
                        let layer = keeper.finish_layer(out.to_device(keeper.pos_embed.device()));
                        layers.push(LayerOutput { camera_token: layer.camera_token.copy(), features: layer.features });
                    }
                }
            }
            if export_layers.contains(&i) {
                exported.push((i, x.shallow_clone()));
            }
        }
        // In the order asked for (the official labels them in that order but collects them in
        // block order, so an unsorted request gets the wrong labels there).
        exported.sort_by_key(|(i, _)| export_layers.iter().position(|l| l == i));
        let exported = exported
            .into_iter()
            .map(|(i, out)| {
                // The official leaves these in the reference-first order when views were
                // reordered; they are returned here in input order, like every other output.
                let out = out.to_device(self.pos_embed.device());
                let out = match &restore_order {
                    Some(order) => out.index_select(0, &order.to_device(out.device())),
                    None => out,
                };
                (i, self.norm.forward(&out).narrow(1, 1, tokens - 1))
            })
            .collect();
        BackboneOutput { layers, reference_view, exported }
    }

    /// (S, C): the learned reference-view token for view 0, the other token for the rest;
    /// `None` without alternating attention (no camera token then).
    fn learned_camera_tokens(&self, views: i64) -> Option<Tensor> {
        let learned = self.camera_token.as_ref()?;
        let reference = learned.select(1, 0);
        let others = learned.select(1, 1).expand([views - 1, self.cfg.embed_dim], false);
        Some(Tensor::cat(&[reference, others], 0))
    }

    /// Camera token = token 0 as is; features = patch tokens with the global half normalised.
    fn finish_layer(&self, out: Tensor) -> LayerOutput {
        let dim = self.cfg.embed_dim;
        let camera_token = out.select(1, 0);
        let features = if self.cfg.cat_token {
            Tensor::cat(&[out.narrow(2, 0, dim).to_kind(Kind::Float), self.norm.forward(&out.narrow(2, dim, dim))], -1)
        } else {
            self.norm.forward(&out)
        };
        let patches = features.size()[1] - 1;
        let features = features.narrow(1, 1, patches);
        let features = match self.features_kind {
            Some(kind) => features.to_kind(kind),
            None => features,
        };
        LayerOutput { features, camera_token }
    }
}
