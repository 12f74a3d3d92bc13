//! `depth_anything_3/utils`: the geometry, ray-pose and pose-alignment utilities, plus
//! replicas of the random generators the official draws from (`rng`).
pub mod geometry;
pub mod pose_align;
pub mod ray_utils;
pub mod rng;
