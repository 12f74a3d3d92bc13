//! One scene's backbone blocks split over several devices: replicas of one backbone (the
//! same weights on different devices), each running a consecutive, equal share of the
//! blocks. Each device then holds only its share of the activations, so a scene too large
//! for one device can fit.
use std::ops::Range;

use crate::error::{Error, Result};
use crate::model::dinov2::{BlockState, DinoVisionTransformer};
use crate::model::{BlockRunner, Execution};

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

    /// The replicas with their shares of `depth` blocks (see `block_shares`).
    fn shares(&self, depth: usize) -> Vec<(&'a DinoVisionTransformer, Range<usize>)> {
        block_shares(depth, self.replicas.len()).into_iter().map(|(r, blocks)| (self.replicas[r], blocks)).collect()
    }

    /// The replica whose device keeps taken layer `k` of `taken`: equal shares in order.
    fn keeper_of(&self, k: usize, taken: usize) -> &'a DinoVisionTransformer {
        self.replicas[keeper_index(k, taken, self.replicas.len())]
    }
}

/// (replica, blocks) for `depth` blocks over `replicas`: block `i` runs on replica
/// `i * replicas / depth`, so each gets a consecutive, equal share, in order.
fn block_shares(depth: usize, replicas: usize) -> Vec<(usize, Range<usize>)> {
    let mut shares: Vec<(usize, Range<usize>)> = Vec::with_capacity(replicas);
    for i in 0..depth {
        let replica = i * replicas / depth;
        match shares.last_mut() {
            Some((last, blocks)) if *last == replica => blocks.end = i + 1,
            _ => shares.push((replica, i..i + 1)),
        }
    }
    shares
}

/// Replica keeping taken layer `k` of `taken`: `k * replicas / taken`.
fn keeper_index(k: usize, taken: usize, replicas: usize) -> usize {
    k * replicas / taken.max(1)
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
                for taken in std::mem::take(&mut state.taken) {
                    // Finished on its keeper's device (taken layers are the largest part of a
                    // long scene's memory).
                    let keeper = self.keeper_of(state.layers.len(), taken_layers);
                    let device = keeper.device();
                    let order = state.restore_order.as_ref().map(|o| o.f_to_device(device)).transpose()?;
                    let layer = keeper.finish_layer(&taken.to_device(device)?, order.as_ref(), exec)?;
                    state.layers.push(layer);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_taken_layers_go_in_equal_consecutive_shares() {
        assert_eq!(block_shares(24, 1), vec![(0, 0..24)]);
        assert_eq!(block_shares(24, 2), vec![(0, 0..12), (1, 12..24)]);
        assert_eq!(block_shares(24, 3), vec![(0, 0..8), (1, 8..16), (2, 16..24)]);
        assert_eq!(block_shares(5, 2), vec![(0, 0..3), (1, 3..5)]);
        // More replicas than blocks: some get none.
        assert_eq!(block_shares(2, 3), vec![(0, 0..1), (1, 1..2)]);
        let keepers: Vec<usize> = (0..4).map(|k| keeper_index(k, 4, 2)).collect();
        assert_eq!(keepers, [0, 0, 1, 1]);
        let keepers: Vec<usize> = (0..4).map(|k| keeper_index(k, 4, 3)).collect();
        assert_eq!(keepers, [0, 0, 1, 2]);
    }
}
