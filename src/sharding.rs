//! One scene's backbone blocks split over several devices: replicas of one backbone (the
//! same weights on different devices), each running a consecutive, equal share of the
//! blocks. Each device then holds only its share of the activations, so a scene too large
//! for one device can fit.
use std::ops::Range;

use crate::error::{Error, Result};
use crate::model::dinov2::{BlockState, DinoVisionTransformer, LayerOutput};
use crate::model::{BlockRunner, Execution};
use crate::nn::copy;

/// The blocks in equal shares over `replicas` (the first share on the first replica); the
/// state moves to each share's device. Taken layers are kept in equal shares over the
/// devices too (taken layers cluster in the last blocks; the head fetches them chunk by
/// chunk).
pub struct ShardedBlocks<'a> {
    replicas: Vec<&'a DinoVisionTransformer>,
}

impl<'a> ShardedBlocks<'a> {
    /// `replicas`: the same backbone on each device, the forward's own first.
    pub fn new(replicas: Vec<&'a DinoVisionTransformer>) -> Result<Self> {
        let first = replicas.first().ok_or_else(|| Error::InvalidArgument("sharded blocks need replicas".into()))?;
        if replicas.iter().any(|r| r.blocks.len() != first.blocks.len() || r.cfg.out_layers != first.cfg.out_layers) {
            return Err(Error::InvalidArgument("sharded blocks need replicas of one backbone".into()));
        }
        Ok(ShardedBlocks { replicas })
    }

    /// Block `i` of `depth` runs on replica `i * n / depth`: consecutive shares, in order.
    fn shares(&self, depth: usize) -> Vec<(&'a DinoVisionTransformer, Range<usize>)> {
        let n = self.replicas.len();
        let mut shares: Vec<(&'a DinoVisionTransformer, Range<usize>)> = Vec::with_capacity(n);
        for i in 0..depth {
            let replica = i * n / depth;
            match shares.last_mut() {
                Some((_, range)) if (range.start * n / depth) == replica => range.end = i + 1,
                _ => shares.push((self.replicas[replica], i..i + 1)),
            }
        }
        shares
    }

    /// The replica whose device keeps taken layer `k` of `taken`: equal shares in order.
    fn keeper_of(&self, k: usize, taken: usize) -> &'a DinoVisionTransformer {
        self.replicas[k * self.replicas.len() / taken.max(1)]
    }
}

impl BlockRunner for ShardedBlocks<'_> {
    fn run(&self, backbone: &DinoVisionTransformer, state: &mut BlockState, exec: Execution<'_>) -> Result<()> {
        let depth = backbone.blocks.len();
        if self.replicas[0].blocks.len() != depth {
            return Err(Error::InvalidArgument("sharded blocks: the replicas are of another backbone".into()));
        }
        let taken_layers = backbone.cfg.out_layers.len();
        for (replica, share) in self.shares(depth) {
            // Moving to the next device: the activations and the positions follow.
            state.to_device(replica.device())?;
            for segment in backbone.segments(share) {
                replica.run_blocks(state, segment, exec)?;
                for out in std::mem::take(&mut state.taken) {
                    // Finished on its keeper's device, the camera token copied out so that
                    // the raw block output's memory is freed: the largest part of a long
                    // scene's memory.
                    let keeper = self.keeper_of(state.layers.len(), taken_layers);
                    let layer = keeper.finish_layer(&out.f_to_device(keeper.device())?, exec)?;
                    state.layers.push(LayerOutput { camera_token: copy(&layer.camera_token)?, features: layer.features });
                }
            }
        }
        Ok(())
    }
}
