//! `model/utils` (and `utils/alignment.py`, which only the model uses).
pub mod alignment;
pub mod block;
pub mod head_utils;
pub mod shape_cache;
pub mod transform;
