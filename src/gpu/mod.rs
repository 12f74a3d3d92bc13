//! All GPU plumbing in one place: run-time loading of libtorch's CUDA backend and what the
//! library takes from the CUDA runtime (`backend`), device and precision selection
//! (`devices`), and the support library `libda3_cuda_support.so` (`support`: CUDA graphs,
//! allocator statistics, cuDNN attention). Nothing here depends on the model or the FFI.
pub mod backend;
pub mod devices;
pub mod support;

pub use backend::{cuda_available, cuda_memory_info, cuda_unavailable_reason, keep_forked_children_usable, with_pinned_staging};
pub use devices::{compute_kind, default_devices, device_name, parse_device_list, resolve_precision};
