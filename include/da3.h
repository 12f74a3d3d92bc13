/*
 * da3.h -- C API of libda3: Depth Anything 3 inference on libtorch.
 *
 * Typical use:
 *
 *     da3_model *model = NULL;
 *     if (da3_create("path/to/checkpoint", false, DA3_PRECISION_AUTO, &model) != DA3_OK) {
 *         fprintf(stderr, "da3: %s\n", da3_last_error_message());
 *         return 1;
 *     }
 *     da3_options opts;
 *     da3_options_default(&opts, sizeof opts);
 *     opts.process_res = 504;
 *     da3_image view = { pixels, width, height, stride, DA3_PIXEL_RGB8 };
 *     da3_result *result = NULL;
 *     if (da3_infer(model, &view, 1, &opts, &result) == DA3_OK) {
 *         const float *depth = da3_result_depth(result, 0);  // H*W floats
 *         ...
 *         da3_result_free(result);
 *     }
 *     da3_free(model);
 *
 * Conventions
 *
 * - Errors: fallible functions return a da3_status (DA3_OK == 0). Functions returning a
 *   pointer or a number report failure as NULL / 0 instead. In both cases the calling
 *   thread's da3_last_error_message() describes what went wrong, naming the argument and
 *   value at fault. Out-parameters are set to NULL on failure.
 * - Ownership: handles (da3_model, da3_result) are created by da3_create / da3_infer* and
 *   released by da3_free / da3_result_free (NULL is a no-op for both). Pointers returned by
 *   accessors are borrowed from their handle and stay valid until it is freed. Strings
 *   returned by da3_version, da3_status_name and da3_precision_name are static. Input
 *   buffers and strings are only read during the call and never kept.
 * - Threads: a da3_model may be used by several threads at once (inferences are serialised
 *   on its device); a da3_result is immutable and may be read from any thread; error
 *   messages are per thread. Freeing a handle must not race with other uses of it.
 * - Enum-like inputs (da3_precision, da3_resize_method, da3_ref_view_strategy,
 *   da3_pixel_format) are uint32_t with #define constants: any value may be passed, and
 *   unknown ones are rejected with DA3_ERR_INVALID_ARGUMENT rather than misread.
 * - Panics inside the library never unwind into C: they are reported as DA3_ERR_PANIC, with
 *   their text in da3_last_error_message() (and the debug log), never on stderr.
 * - Bad input: no input known to us crashes, hangs or exhausts the host: sizes are checked
 *   before allocation (DA3_MAX_PROCESSED_PIXELS, DA3_MAX_PROCESSED_SIDE, the image decoder and
 *   file limits), non-finite or absurd floats are refused (DA3_ERR_INVALID_ARGUMENT), and a
 *   result is finite throughout or not made (DA3_ERR_NON_FINITE). Memory exhaustion is
 *   DA3_ERR_OUT_OF_MEMORY and leaves the model usable. (README: "Reliability".)
 * - Processes and threads: any thread may call, whatever its stack size (a load or inference
 *   called from a thread with less than 1 MiB of stack left runs on a helper thread with 8 MiB
 *   while the caller waits: libtorch's CPU kernels need more than small stacks hold). After
 *   fork(), the child may use CPU models created before the fork (its libtorch runs
 *   single-threaded: GNU OpenMP's pool does not survive fork; libda3 also turns off MKL's fast
 *   memory manager at its first load, whose lock does not survive fork either: a fork while a
 *   thread exited could hang the child's first matrix product) but not CUDA ones (CUDA does not
 *   survive fork): a child that needs the GPU should exec, or create its models after fork in
 *   a parent that never initialised CUDA. On a GPU, each replica does its device work (load,
 *   forwards, output copies) on one thread of its own, kept for the process's life and reused
 *   by the next model on that device, while the calling thread waits: libtorch's cuDNN plan
 *   caches are per thread and never freed, so work on a host's short-lived threads would grow
 *   host memory with every new thread. Do not call exit() while another thread is inside a
 *   da3 call (libtorch's static destructors run under it); join or cancel such calls first.
 *   Callbacks (log, progress) must return normally: no exceptions, longjmp or thread exit.
 * - The host is in charge: da3_log_set sends libda3's notes to a callback instead of stderr
 *   (process-wide; called from any thread that runs libda3 work, possibly concurrently);
 *   a da3_cancel_token in da3_options.cancel stops a running da3_infer* from another thread
 *   (DA3_ERR_CANCELLED, the model stays usable); da3_create_with_options takes the devices,
 *   thread counts and a progress callback that may abort the load.
 * - Environment: libda3 reads these variables once, when da3_create / da3_create_on_devices
 *   loads a model (Rust: da3::Settings), never during a call. An explicit argument wins over
 *   them (the device list of da3_create_on_devices); where one changes what an argument asked
 *   for, its line says so.
 *   DA3_DEVICE = cpu, cuda, cuda:N (default: first GPU, else CPU): the device of da3_create; overrides use_accelerate's every-GPU choice
 *   DA3_DEVICES = comma-separated devices (default: unset): one replica per listed device for da3_create (not da3_create_on_devices)
 *   DA3_PLACEMENT = auto, replicate, shard (default: auto): initial placement of scenes over replicas (da3_model_set_placement wins)
 *   DA3_PREPROCESS_THREADS = N >= 1 (default: every core): threads that resize and normalise the views (1: the calling thread)
 *   DA3_ATTENTION = sdpa (default: cuDNN): use_accelerate on a GPU: libtorch's SDPA instead of cuDNN attention
 *   DA3_ACCEL_HEAD = fp32 (default: compute precision): use_accelerate: the official fp32 depth head (overrides precision there)
 *   DA3_ACCEL_NHWC = 0 (default: 1): use_accelerate: NCHW instead of channels-last head convolutions
 *   DA3_ACCEL_FEATURES = fp32 (default: compute precision): use_accelerate: fp32 backbone features into the head
 *   DA3_ACCEL_GLUE = kernels, libtorch, official (default: kernels): use_accelerate: the block glue and the head's upsampling in run-time compiled GPU kernels, in libtorch operations (same arithmetic), or the official passes
 *   DA3_ACCEL_GELU = epilogue, exact (default: epilogue): use_accelerate with the glue kernels: the MLPs' GELU (tanh form) in fc1's matrix product epilogue, or the official exact GELU in a pass of its own
 *   DA3_PREPROCESS = auto, host, device (default: auto): where frames from host memory are resized and normalised (the same bytes either way): auto = on the GPU from the uploaded bytes for a model on one GPU, on the host's threads on the CPU and with several GPUs
 *   DA3_LOG = off, error, warn, info, debug (default: warn): what libda3 reports to stderr or the da3_log_set callback (debug: libtorch backtraces and, on one GPU, the memory in use at each stage of a forward)
 *   DA3_LOG_GRAPHS = any (default: unset): same as DA3_LOG=info (CUDA graph captures and fallbacks)
 *   DA3_CUDA_SUPPORT_LIB = a path (default: beside libda3): where libda3_cuda_support.so is looked for first
 *   HF_HUB_CACHE, HF_HOME, HOME = directories (default: ~/.cache/huggingface/hub): where a repo id such as depth-anything/DA3-LARGE is looked up
 * - ABI: symbols and struct layouts are stable within a major version (for 0.x: within a
 *   minor version); da3_options may grow at its end (see its struct_size field).
 */

#ifndef DA3_H
#define DA3_H

/* Generated by cbindgen from src/ffi/; do not edit. Regenerate with: DA3_UPDATE_HEADER=1 cargo test --release --test header */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/**
 * Major version of the header (and of the library it was generated with).
 * `da3_version()` gives the version of the library actually loaded.
 */
#define DA3_VERSION_MAJOR 0

/**
 * Minor version of the header.
 */
#define DA3_VERSION_MINOR 1

/**
 * Patch version of the header.
 */
#define DA3_VERSION_PATCH 0

/**
 * Largest `process_res` accepted.
 */
#define DA3_MAX_PROCESS_RES 4096

/**
 * Most pixels a view may have at any step of preprocessing (4200 x 4200). A request that
 * would exceed it (e.g. a very elongated image at a lower-bound resize: a 1x60000 image at
 * `process_res` 140 asks for 140 x 8,400,000 pixels) fails with `DA3_ERR_INVALID_ARGUMENT`,
 * checked from the sizes before anything is allocated.
 */
#define DA3_MAX_PROCESSED_PIXELS 17640000

/**
 * Longest side a view may have at any step of preprocessing; beyond it, as for
 * `DA3_MAX_PROCESSED_PIXELS`.
 */
#define DA3_MAX_PROCESSED_SIDE 16384

/**
 * Largest magnitude accepted in known cameras for a translation component, a focal length,
 * the principal point or the skew; beyond it float32 geometry is meaningless (squared
 * distances overflow), so such cameras are refused with `DA3_ERR_INVALID_ARGUMENT`.
 */
#define DA3_MAX_CAMERA_MAGNITUDE 1.0e8

/**
 * Smallest focal length accepted in known intrinsics, in pixels.
 */
#define DA3_MIN_FOCAL_LENGTH 1.0e-3

/**
 * Most pixels (width x height) an image file may claim in `da3_infer_files`: PIL's own limit
 * (`Image.open` raises `DecompressionBombError` above twice `Image.MAX_IMAGE_PIXELS`), so the
 * library refuses what the official pipeline refuses; room for the largest camera sensors
 * (about 151 megapixels); 512 MiB as RGB8.
 */
#define DA3_IMAGE_MAX_PIXELS 178956970

/**
 * Most pixels a side of an image file may have in `da3_infer_files`: the largest a JPEG can
 * declare (libjpeg's `JPEG_MAX_DIMENSION`), for PNG too.
 */
#define DA3_IMAGE_MAX_SIDE 65500

/**
 * Largest image file `da3_infer_files` reads, in bytes (512 MiB): an image at
 * `DA3_IMAGE_MAX_PIXELS` stored as uncompressed 8-bit RGB fits.
 */
#define DA3_IMAGE_MAX_FILE_BYTES 536870912

/**
 * Result of a fallible call. `DA3_OK` is 0; every other value is an error whose readable
 * description is in `da3_last_error_message()`. Values are stable across versions; new
 * codes may be added, so keep a `default:` branch when switching on them.
 */
typedef enum da3_status {
    /**
     * Success.
     */
    DA3_OK = 0,
    /**
     * An argument is out of range or inconsistent (unknown enum value, zero size, bad stride,
     * view index past the end, ...). The message names the argument and its value.
     */
    DA3_ERR_INVALID_ARGUMENT = 1,
    /**
     * A required pointer argument is NULL. The message names it.
     */
    DA3_ERR_NULL_POINTER = 2,
    /**
     * No checkpoint was found for the `model` argument of `da3_create`; the message lists the
     * places that were tried.
     */
    DA3_ERR_MODEL_NOT_FOUND = 3,
    /**
     * A checkpoint was found but cannot be used (unreadable or corrupt file, unknown preset,
     * missing, unexpected or mis-shaped tensors).
     */
    DA3_ERR_CHECKPOINT = 4,
    /**
     * An input image file could not be read or decoded, or a PNG could not be encoded.
     */
    DA3_ERR_IMAGE = 5,
    /**
     * A file-system operation failed (e.g. writing a PNG into a missing directory).
     */
    DA3_ERR_IO = 6,
    /**
     * The requested feature or device is not available in this build or on this machine,
     * the model cannot serve the request (known cameras without a camera encoder, ray pose
     * without a ray head: see `da3_model_capabilities`), or `da3_options` comes from a newer
     * `da3.h` than the loaded library.
     */
    DA3_ERR_UNSUPPORTED = 7,
    /**
     * libtorch reported an error (a kernel failure, an unsupported operation, ...); out of
     * memory has its own status, `DA3_ERR_OUT_OF_MEMORY`. The message is libtorch's first
     * line after the operation that failed (`DA3_LOG=debug` writes the whole text to stderr).
     */
    DA3_ERR_TORCH = 8,
    /**
     * The requested output is not in this result (e.g. cameras from a model without a camera
     * head, an alignment scale without known cameras); see `da3_result_has_cameras`.
     */
    DA3_ERR_NOT_AVAILABLE = 9,
    /**
     * A bug inside libda3 (a Rust panic or a broken internal invariant) was caught at the
     * API boundary. The handles involved stay valid but their state is unspecified; please
     * report the message.
     */
    DA3_ERR_PANIC = 10,
    /**
     * Memory ran out on the model's device (GPU memory, or host memory for CPU work) while
     * preprocessing or running the network. The call failed without side effects: the model
     * handle stays usable and a smaller request (fewer views, a lower `process_res`) may
     * succeed. The message names the operation and the device.
     */
    DA3_ERR_OUT_OF_MEMORY = 11,
    /**
     * The host stopped the call: a `da3_infer*` whose `da3_options.cancel` token was
     * cancelled (before the call or while it ran), or a `da3_create_with_options` whose
     * progress callback returned false. Nothing was returned (out-pointers are NULL), and the
     * model handle stays usable: the next call runs normally (reset the token first, it stays
     * cancelled until `da3_cancel_token_reset`). The message says where the call stopped.
     */
    DA3_ERR_CANCELLED = 12,
    /**
     * The network produced a non-finite value (NaN or infinity) in depth, confidence, sky or
     * the cameras, or the alignment to known cameras a non-finite or zero scale (e.g. an
     * overflow at reduced precision). Nothing is returned: a result is either finite
     * throughout or not made. Inputs that would cause it are refused up front with
     * `DA3_ERR_INVALID_ARGUMENT` where they can be recognised (non-finite input floats,
     * cameras outside `DA3_MAX_CAMERA_MAGNITUDE`); the model handle stays usable.
     */
    DA3_ERR_NON_FINITE = 13,
} da3_status;

/**
 * A cancellation flag (opaque), shared between the host and the calls it is handed to
 * through `da3_options.cancel`. Create with `da3_cancel_token_new`, set with
 * `da3_cancel_token_cancel` (from any thread, e.g. while a `da3_infer` runs on another),
 * clear with `da3_cancel_token_reset`, destroy with `da3_cancel_token_free`.
 *
 * A call holding a cancelled token returns `DA3_ERR_CANCELLED` at its next check: before
 * and after preprocessing (and before each file of `da3_infer_files`), before each block of
 * the transformer backbone, between the backbone and the head, between the nested model's
 * branches and after the forward; `da3_infer_scenes` stops every scene not yet finished.
 * On a GPU the checks happen as the host queues the work, so kernels already queued still
 * run to the end (the call returns once they are done); a forward replayed from a CUDA graph
 * (`use_accelerate`) is one launch, checked only before and after it. The flag stays set
 * until reset: a call started with a cancelled token stops at once. One token may serve
 * many calls at once (cancelling stops them all).
 */
typedef struct da3_cancel_token da3_cancel_token;

/**
 * A loaded model on one or several devices, one replica each (opaque). Create with
 * `da3_create` or `da3_create_on_devices`, destroy with `da3_free`.
 * Thread-safe: any number of threads may call `da3_infer`/`da3_infer_files`/
 * `da3_infer_scenes` and the query functions on one handle at the same time; each call runs
 * on whichever replica is free (first come, first served), so calls on one replica are
 * serialised and a handle with several GPUs serves that many calls at once.
 */
typedef struct da3_model da3_model;

/**
 * The output of one inference (opaque): depth, confidence and cameras for every view, in
 * host memory owned by the handle. Immutable, so it may be read from any number of threads
 * at once. Destroy with `da3_result_free`.
 */
typedef struct da3_result da3_result;

/**
 * Arithmetic precision of the network: one of the `DA3_PRECISION_*` constants.
 */
typedef uint32_t da3_precision;

/**
 * How an image is brought to the processing resolution (the official `process_res_method`):
 * one of the `DA3_RESIZE_*` constants.
 */
typedef uint32_t da3_resize_method;

/**
 * Which view anchors a scene of three views or more (the official `ref_view_strategy`):
 * one of the `DA3_REF_VIEW_*` constants.
 */
typedef uint32_t da3_ref_view_strategy;

/**
 * Per-call inference options.
 *
 * Always initialise one with `da3_options_default(&opts, sizeof opts)`, then change the
 * fields you need. A NULL `const da3_options *` anywhere means "all defaults".
 *
 * ABI evolution: `struct_size` tells the library which version of the struct the caller was
 * compiled with. Fields are only ever appended, in groups laid out so that no version has
 * padding inside or at its end (32-bit fields in pairs before pointers); so each version's
 * `sizeof` is the end of its last field and differs from every other version's, on every
 * platform. The versions: 16 bytes (up to `ref_view_strategy`), 24 bytes (up to
 * `align_to_input_ext_scale`), 32 bytes plus three pointers (up to `export_feat_layers`: 56
 * on 64-bit platforms, 44 on 32-bit ones), and this one (32 bytes plus four pointers, up to
 * `cancel`: 64 on 64-bit platforms, 48 on 32-bit ones). Only these sizes are accepted. Fields beyond the caller's
 * `struct_size` take their defaults and are never read, so a program built against an older
 * `da3.h` keeps working with a newer library; a `struct_size` larger than the loaded library
 * knows (a program built against a newer `da3.h`) is rejected with `DA3_ERR_UNSUPPORTED`
 * instead of being silently half-applied.
 *
 * Pointers in the struct are borrowed: the library reads what they point to during the
 * `da3_infer` / `da3_infer_files` call only and keeps nothing.
 */
typedef struct da3_options {
    /**
     * `sizeof(da3_options)` as the caller compiled it; set by `da3_options_default`.
     */
    uint32_t struct_size;
    /**
     * Processing resolution in pixels, 14..=`DA3_MAX_PROCESS_RES` (official `process_res`,
     * default 504); the processed views are bounded by `DA3_MAX_PROCESSED_PIXELS` and
     * `DA3_MAX_PROCESSED_SIDE`.
     */
    uint32_t process_res;
    /**
     * A `DA3_RESIZE_*` value (default `DA3_RESIZE_UPPER_BOUND_RESIZE`).
     */
    da3_resize_method resize_method;
    /**
     * A `DA3_REF_VIEW_*` value (default `DA3_REF_VIEW_SADDLE_BALANCED`).
     */
    da3_ref_view_strategy ref_view_strategy;
    /**
     * 1: camera pose from the DualDPT ray branch instead of the camera decoder (official
     * `use_ray_pose`; models with `DA3_CAP_RAY_POSE`: any-view and nested; slower: the ray
     * branch and a RANSAC fit per view run); 0: the camera decoder (default). Added in 0.1
     * after `ref_view_strategy`.
     */
    uint32_t use_ray_pose;
    /**
     * With known cameras (`extrinsics`, `intrinsics`), how the prediction is aligned to them
     * (official `align_to_input_ext_scale`): 1 (default): the result's extrinsics are the given
     * ones and depth is divided by the alignment scale, so it is in the given cameras' units;
     * 0: depth keeps the predicted scale and the given extrinsics are returned moved into the
     * prediction's frame. Either way `da3_result_alignment_scale` reports the scale. Ignored
     * without known cameras. Must be 0 or 1.
     */
    uint32_t align_to_input_ext_scale;
    /**
     * Rows per view in `extrinsics`: 4 (4x4 matrices, last row 0 0 0 1) or 3 (3x4 [R | t]).
     * Must be set when `extrinsics` is; 0 (default) otherwise. Added in the 56-byte version.
     */
    uint32_t extrinsics_rows;
    /**
     * Number of entries in `export_feat_layers` (default 0).
     */
    uint32_t export_feat_layer_count;
    /**
     * Known cameras, world-to-camera (OpenCV convention: x right, y down, z forward), one per
     * view of the call (`n_views` / `n_paths`), row-major float32: `n * extrinsics_rows * 4`
     * floats, 4-byte aligned. Each must be a rigid transform (rotation block orthonormal with
     * determinant +1) with finite values and translation components of magnitude at most
     * `DA3_MAX_CAMERA_MAGNITUDE`. With known cameras the network is conditioned on
     * them (any-view and nested models: `DA3_CAP_KNOWN_CAMERAS`) and the prediction is aligned
     * back to them (Umeyama similarity of the camera centres; RANSAC from 10 views), see
     * `align_to_input_ext_scale`. The alignment needs at least 3 camera centres that are not
     * collinear. NULL (default): no known cameras. `extrinsics` and `intrinsics` are given
     * together or not at all.
     */
    const float *extrinsics;
    /**
     * Known intrinsics, one 3x3 row-major pinhole matrix per view (fx s cx / 0 fy cy / 0 0 1,
     * fx and fy between `DA3_MIN_FOCAL_LENGTH` and `DA3_MAX_CAMERA_MAGNITUDE`, cx, cy and the
     * skew at most `DA3_MAX_CAMERA_MAGNITUDE` in magnitude) in pixels of the caller's original
     * image (the library carries them
     * through its resize and crop): `n * 9` floats, 4-byte aligned. NULL (default): none.
     */
    const float *intrinsics;
    /**
     * Backbone blocks whose features the result should carry (official `export_feat_layers`):
     * `export_feat_layer_count` distinct block indices, each below `da3_model_backbone_depth`,
     * in the order the result lists them (`da3_result_feature_*`). NULL with a count of 0
     * (default): none.
     */
    const uint32_t *export_feat_layers;
    /**
     * A cancel token (`da3_cancel_token_new`) that stops the call when cancelled from another
     * thread, with `DA3_ERR_CANCELLED` (see `da3_cancel_token` for where the call checks it);
     * NULL (default): the call cannot be cancelled. Borrowed: it must stay alive until the
     * call returns. Added in the 64-byte version (48 on 32-bit platforms).
     */
    const struct da3_cancel_token *cancel;
} da3_options;

/**
 * Bit set of what a model predicts and accepts, from `da3_model_capabilities`: an OR of
 * `DA3_CAP_*` flags. Bits not defined here are never set.
 */
typedef uint32_t da3_capabilities;

/**
 * How one scene uses a model with several replicas: one of the `DA3_PLACEMENT_*` constants.
 */
typedef uint32_t da3_placement;

/**
 * GPU memory held by libtorch's caching allocator on a model's device, in bytes (all
 * models and results on that device together: the allocator is per device).
 * `struct_size` first, so the struct can grow: set it to `sizeof(da3_memory_stats)`.
 */
typedef struct da3_memory_stats {
    /**
     * `sizeof(da3_memory_stats)` as the caller compiled it; the library sets it to the
     * number of bytes it wrote.
     */
    uint32_t struct_size;
    /**
     * Zero.
     */
    uint32_t reserved_0;
    /**
     * Bytes in live tensors now.
     */
    uint64_t allocated_bytes;
    /**
     * Highest `allocated_bytes` since the model was loaded or `da3_model_reset_peak_memory`
     * (what `torch.cuda.max_memory_allocated` reports).
     */
    uint64_t peak_allocated_bytes;
    /**
     * Bytes the allocator holds from the driver now (live tensors, cached blocks and the
     * memory pools of captured CUDA graphs).
     */
    uint64_t reserved_bytes;
    /**
     * Highest `reserved_bytes` over the same period.
     */
    uint64_t peak_reserved_bytes;
} da3_memory_stats;

/**
 * Hears how a load advances: `fraction` from 0 to 1 (never decreasing), `stage` one of
 * "resolve" (finding the checkpoint, reading its configuration), "read" (reading the
 * weights file's tensor table and checking it against the architecture, per replica),
 * "build" (reading each tensor, converting it and placing it on the replicas' devices) and
 * "done" (fraction 1, the last call); a static string. Return true to
 * go on, false to abort the load: `da3_create_with_options` then returns
 * `DA3_ERR_CANCELLED` soon after (at the next tensor).
 *
 * Called on the thread that called `da3_create_with_options` or on the threads that load
 * the replicas (two at a time), one call at a time, before `da3_create_with_options`
 * returns; never afterwards. Throttled to steps of about 1 % and every change of stage. It
 * must return (not throw, not longjmp) and must not free the model being loaded.
 */
typedef bool (*da3_load_progress)(float fraction, const char *stage, void *user_data);

/**
 * How `da3_create_with_options` loads a model, beyond the arguments of `da3_create`.
 *
 * Initialise with `da3_load_options_default(&opts, sizeof opts)`, then set what you need.
 * Versioned by `struct_size` like `da3_options`: fields are only appended, a library reads
 * only the `struct_size` bytes the caller compiled, and a larger `struct_size` than it knows
 * is `DA3_ERR_UNSUPPORTED`. This version: 16 bytes plus three pointers (40 on 64-bit
 * platforms, 28 on 32-bit ones).
 *
 * Pointers are borrowed: read (and the callback called) only during the load.
 */
typedef struct da3_load_options {
    /**
     * `sizeof(da3_load_options)` as the caller compiled it; set by `da3_load_options_default`.
     */
    uint32_t struct_size;
    /**
     * libtorch's intra-op CPU threads (the threads of one matrix product or convolution on
     * the CPU); 0 (default): left as it is. Process-wide: libtorch has one such setting
     * (`at::set_num_threads`) for every model in the process and the host's own libtorch use;
     * the last load that sets it wins. A load with `use_accelerate` on a GPU sets it to 1
     * (the GPU path's CPU work is small copies); a value here wins over that.
     */
    uint32_t torch_threads;
    /**
     * Threads that decode, resize and normalise the views of one call (1: the calling
     * thread only); 0 (default): the environment variable `DA3_PREPROCESS_THREADS`, else
     * every core. A value here wins over the variable. Per model.
     */
    uint32_t preprocess_threads;
    /**
     * Zero.
     */
    uint32_t reserved_0;
    /**
     * The replicas' devices as for `da3_create_on_devices` ("cuda:0,cuda:1", "cpu"); NULL
     * (default): chosen as `da3_create` chooses them.
     */
    const char *devices;
    /**
     * Progress callback; NULL (default): none.
     */
    da3_load_progress progress;
    /**
     * Passed back to `progress`, never touched by the library.
     */
    void *progress_user_data;
} da3_load_options;

/**
 * Severity of a libda3 note: one of the `DA3_LOG_*` constants. As a filter
 * (`da3_log_set_level`), a level lets through its notes and the more severe ones.
 */
typedef uint32_t da3_log_level;

/**
 * Receives one note: its level (`DA3_LOG_ERROR` to `DA3_LOG_DEBUG`), the message (one line,
 * UTF-8, no trailing newline, valid only during the call: copy it to keep it) and the
 * `user_data` given to `da3_log_set`.
 *
 * Called from any thread that runs libda3 work (the caller's threads, the preprocessing
 * threads, the threads that load replicas, a GPU replica's own thread), possibly from
 * several at once: it must be
 * thread-safe. It must return (not throw, not longjmp) and must not call `da3_log_set`
 * (that call fails with `DA3_ERR_INVALID_ARGUMENT`); notes libda3 writes while it runs on
 * the same thread go to stderr.
 */
typedef void (*da3_log_callback)(da3_log_level level, const char *message, void *user_data);

/**
 * Byte order of an interleaved 8-bit pixel: one of the `DA3_PIXEL_*` constants.
 */
typedef uint32_t da3_pixel_format;

/**
 * A caller-owned 8-bit interleaved image, read (never written or kept) during one call.
 *
 * The library reads `stride * (height - 1) + width * bytes_per_pixel` bytes from `data`;
 * the caller guarantees that many bytes are readable until the call returns. The image
 * file limits (`DA3_IMAGE_MAX_*`, see `da3_infer_files`) do not apply: these pixels are
 * already in the caller's memory and are read in place; a description whose byte count
 * overflows is refused with `DA3_ERR_INVALID_ARGUMENT` before any byte is read. Row `y` starts
 * at `data + y * stride`. This struct is passed in arrays, so it has no size field and its
 * layout is frozen: a different layout would come as a new type with new functions.
 */
typedef struct da3_image {
    /**
     * First byte of the top row. Must not be NULL.
     */
    const uint8_t *data;
    /**
     * Width in pixels (> 0).
     */
    uint32_t width;
    /**
     * Height in pixels (> 0).
     */
    uint32_t height;
    /**
     * Bytes from the start of one row to the start of the next, at least
     * `width * bytes_per_pixel` (no "0 means packed" shortcut).
     */
    size_t stride;
    /**
     * A `DA3_PIXEL_*` value.
     */
    da3_pixel_format format;
} da3_image;

/**
 * One scene of a `da3_infer_scenes` batch: `view_count` images (one per view), read only
 * during the call. Passed in arrays; its layout is frozen.
 */
typedef struct da3_scene {
    /**
     * `view_count` images, each satisfying `da3_image`'s contract. Must not be NULL.
     */
    const struct da3_image *views;
    /**
     * Number of views (> 0).
     */
    size_t view_count;
} da3_scene;

/**
 * A caller's 8-bit interleaved image in CUDA device memory (zero-copy input for renderers,
 * GPU video decoders and cameras that deliver frames on the GPU), read only during the call.
 *
 * `data` is a device address (from `cudaMalloc`, `cudaMallocPitch`, `cudaMallocManaged`,
 * a CUDA graphics-interop mapping, ...); row `y` starts at `data + y * pitch`. Before any byte
 * is read, the library asks CUDA which allocation holds `data` and refuses with
 * `DA3_ERR_INVALID_ARGUMENT` an address CUDA does not know as device or managed memory (a host
 * pointer, a freed or made-up address), an image of `pitch * (height - 1) + width *
 * bytes_per_pixel` bytes that runs past the end of that allocation, and views on different
 * GPUs. The check is against CUDA's allocation: a pool or caching allocator (libtorch's, say)
 * carves many buffers out of one, so an image overrunning its buffer but not the pool's
 * allocation is read as described. Passed in arrays; its layout is frozen.
 */
typedef struct da3_cuda_image {
    /**
     * Device address of the first byte of the top row. Must not be NULL.
     */
    const void *data;
    /**
     * Width in pixels (> 0).
     */
    uint32_t width;
    /**
     * Height in pixels (> 0).
     */
    uint32_t height;
    /**
     * Bytes from the start of one row to the start of the next, at least
     * `width * bytes_per_pixel` (the pitch `cudaMallocPitch` returns, for example).
     */
    size_t pitch;
    /**
     * A `DA3_PIXEL_*` value (alpha is ignored).
     */
    da3_pixel_format format;
} da3_cuda_image;

/**
 * Which maps a `da3_infer_cuda` result also keeps in GPU memory: a bitwise OR of the
 * `DA3_DEVICE_OUTPUT_*` constants, or 0 for none.
 */
typedef uint32_t da3_device_outputs;

/**
 * Kind of a result warning, from `da3_result_warning_code`: one of the `DA3_WARNING_*`
 * constants. New kinds may be added; treat unknown values as "some warning".
 */
typedef uint32_t da3_warning;

/**
 * Which per-pixel map of a result: one of the `DA3_MAP_*` constants.
 */
typedef uint32_t da3_map;

/**
 * How a map is resampled to the input size: one of the `DA3_INTERPOLATION_*` constants.
 */
typedef uint32_t da3_interpolation;

/**
 * Which mapping from processed to input pixels: one of the `DA3_PIXEL_MAPPING_*` constants.
 */
typedef uint32_t da3_pixel_mapping;

/**
 * Bit set of export choices: an OR of the `DA3_EXPORT_*` constants (0: none).
 */
typedef uint32_t da3_export_flags;

/**
 * bf16 on GPUs that support it, else fp16; fp32 on the CPU.
 */
#define DA3_PRECISION_AUTO 0

/**
 * 32-bit floats everywhere.
 */
#define DA3_PRECISION_FP32 1

/**
 * 16-bit floats (IEEE half).
 */
#define DA3_PRECISION_FP16 2

/**
 * bfloat16.
 */
#define DA3_PRECISION_BF16 3

/**
 * Longest side to `process_res`, then each side to the nearest multiple of 14 (default).
 */
#define DA3_RESIZE_UPPER_BOUND_RESIZE 0

/**
 * Shortest side to `process_res`, then each side to the nearest multiple of 14.
 */
#define DA3_RESIZE_LOWER_BOUND_RESIZE 1

/**
 * Longest side to `process_res`, then centre-crop each side down to a multiple of 14.
 */
#define DA3_RESIZE_UPPER_BOUND_CROP 2

/**
 * Shortest side to `process_res`, then centre-crop each side down to a multiple of 14.
 */
#define DA3_RESIZE_LOWER_BOUND_CROP 3

/**
 * The official default.
 */
#define DA3_REF_VIEW_SADDLE_BALANCED 0

/**
 * Always the first view.
 */
#define DA3_REF_VIEW_FIRST 1

/**
 * The middle view.
 */
#define DA3_REF_VIEW_MIDDLE 2

/**
 * The official `saddle_sim_range` strategy.
 */
#define DA3_REF_VIEW_SADDLE_SIM_RANGE 3

/**
 * 3 bytes per pixel: red, green, blue.
 */
#define DA3_PIXEL_RGB8 0

/**
 * 4 bytes per pixel: red, green, blue, alpha (alpha is ignored).
 */
#define DA3_PIXEL_RGBA8 1

/**
 * 3 bytes per pixel: blue, green, red (OpenCV's default).
 */
#define DA3_PIXEL_BGR8 2

/**
 * 4 bytes per pixel: blue, green, red, alpha (alpha is ignored).
 */
#define DA3_PIXEL_BGRA8 3

/**
 * Predicts cameras: results hold extrinsics and intrinsics (`da3_result_has_cameras`). The
 * any-view models and the nested model.
 */
#define DA3_CAP_POSE (1 << 0)

/**
 * Predicts depth confidence (`da3_result_confidence`). The any-view models and the nested
 * model; not `da3metric-large` / `da3mono-large`.
 */
#define DA3_CAP_CONFIDENCE (1 << 1)

/**
 * Predicts a sky map (`da3_result_sky`). `da3metric-large`, `da3mono-large`, the nested model.
 */
#define DA3_CAP_SKY (1 << 2)

/**
 * Depth and camera translations come out in metres, with the factor that put them there
 * (`da3_result_is_metric`, `da3_result_scale_factor`): the nested model.
 */
#define DA3_CAP_METRIC_DEPTH (1 << 3)

/**
 * Depth is metric for a canonical focal length of 300 pixels (`da3metric-large`): metres =
 * depth * (fx + fy) / 2 / 300 with the processed-image intrinsics.
 */
#define DA3_CAP_CANONICAL_METRIC_DEPTH (1 << 4)

/**
 * Accepts known cameras (`da3_options.extrinsics` / `intrinsics`): a camera encoder. The
 * any-view models and the nested model.
 */
#define DA3_CAP_KNOWN_CAMERAS (1 << 5)

/**
 * Can take the pose from the ray branch (`da3_options.use_ray_pose`): a DualDPT head. The
 * any-view models and the nested model.
 */
#define DA3_CAP_RAY_POSE (1 << 6)

/**
 * Not a warning: returned when the query itself fails (NULL result, index out of range).
 */
#define DA3_WARNING_NONE 0

/**
 * Nested model: the scene holds (almost) only sky, too little for the metric alignment; the
 * result is the any-view branch's relative depth (not metres, no scale factor).
 */
#define DA3_WARNING_METRIC_ALIGNMENT_SKIPPED 1

/**
 * Nested model: no pixel qualified for the metric alignment, so the scale factor is 0 and the
 * depth is zero outside the sky, as the official computes it.
 */
#define DA3_WARNING_EMPTY_ALIGNMENT_MASK 2

/**
 * The scene runs on one replica, unless its estimated memory exceeds the free memory of the
 * first GPU: then it is split over all of them, like `DA3_PLACEMENT_SHARD` (default; the
 * environment variable `DA3_PLACEMENT` = `auto`, `replicate` or `shard` sets the default).
 */
#define DA3_PLACEMENT_AUTO 0

/**
 * Every scene on one replica: concurrent calls and the scenes of `da3_infer_scenes` run on
 * the other replicas at the same time (throughput).
 */
#define DA3_PLACEMENT_REPLICATE 1

/**
 * Every scene split over all replicas (size): the backbone's blocks in consecutive shares
 * over the devices, the activations moving between them, the heads on the first device.
 * The call holds every replica, so concurrent calls wait.
 */
#define DA3_PLACEMENT_SHARD 2

/**
 * No notes at all (a filter only; never passed to a callback).
 */
#define DA3_LOG_OFF 0

/**
 * Something failed inside libda3 beyond what the failing call's status reports.
 */
#define DA3_LOG_ERROR 1

/**
 * Something the host should look at (the default filter).
 */
#define DA3_LOG_WARN 2

/**
 * What libda3 decided: the devices and precision of a load (e.g. `DA3_PRECISION_AUTO`
 * resolved to bf16, or to fp16 on a GPU without bf16), the threads set, a scene split over
 * several replicas, CUDA graph captures and kernel fallbacks.
 */
#define DA3_LOG_INFO 3

/**
 * Diagnostics, e.g. libtorch's whole error message with its C++ backtrace.
 */
#define DA3_LOG_DEBUG 4

/**
 * The depth, as `da3_result_depth_device`.
 */
#define DA3_DEVICE_OUTPUT_DEPTH 1

/**
 * The depth confidence, as `da3_result_confidence_device` (models that predict one).
 */
#define DA3_DEVICE_OUTPUT_CONFIDENCE 2

/**
 * Depth (`da3_result_depth`).
 */
#define DA3_MAP_DEPTH 0

/**
 * Depth confidence (`da3_result_confidence`).
 */
#define DA3_MAP_CONFIDENCE 1

/**
 * Sky (`da3_result_sky`).
 */
#define DA3_MAP_SKY 2

/**
 * The nearest processed pixel: only values the network gave (masks; no depth mixed across
 * an edge).
 */
#define DA3_INTERPOLATION_NEAREST 0

/**
 * Bilinear between the four nearest processed pixels (smooth; mixes depths across edges).
 */
#define DA3_INTERPOLATION_BILINEAR 1

/**
 * Where the pixel's content came from: OpenCV's resize geometry (pixel centres at
 * half-integers of the continuous grid: through each resize x -> (x + 0.5) * from / to - 0.5,
 * through each crop x -> x + left). The mapping `da3_result_map_at_input` samples with.
 */
#define DA3_PIXEL_MAPPING_SAMPLE 0

/**
 * Consistent with the intrinsics (`da3_result_intrinsics_at_input`): through each resize
 * x -> x * from / to, through each crop x -> x + left, so a point projecting to (x, y) with
 * `da3_result_intrinsics` projects to the result with the input intrinsics (as the official
 * COLMAP export scales its 2D points). It differs from SAMPLE by 0.5 * (from / to - 1) input
 * pixels per resize: the official's intrinsics and its resize disagree by that half pixel.
 */
#define DA3_PIXEL_MAPPING_CAMERA 1

/**
 * Leave out sky pixels (sky >= 0.5, the official sky mask) when the result has a sky map.
 */
#define DA3_EXPORT_DROP_SKY 1

/**
 * COLMAP: cameras and 2D points in each view's input pixels instead of processed pixels.
 */
#define DA3_EXPORT_INPUT_PIXELS 2

/**
 * GLB: no camera frusta.
 */
#define DA3_EXPORT_NO_CAMERAS 4

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

/**
 * Version of the loaded library as "MAJOR.MINOR.PATCH". Compare it with the
 * `DA3_VERSION_*` macros to detect a header/library mismatch.
 *
 * Ownership: static string, never free it. Thread safety: any thread.
 */
const char *da3_version(void);

/**
 * Symbolic name of a status code, e.g. "DA3_ERR_IO"; "DA3_UNKNOWN_STATUS" for values this
 * version does not know. Takes an `int` so any value is safe to pass.
 *
 * Ownership: static string, never free it. Thread safety: any thread. Does not touch the
 * thread's error message.
 */
const char *da3_status_name(int status);

/**
 * Readable message describing the most recent failing da3 call on the calling thread, or
 * "" if no call on this thread has failed yet. Successful calls do not clear it, so read it
 * right after a call reported failure (a non-`DA3_OK` status, NULL or 0).
 *
 * Ownership: the string belongs to the library; it stays valid until the next da3 call on
 * the same thread. Copy it if you need it longer; never free it.
 * Thread safety: messages are per thread, so failures on other threads never show here.
 */
const char *da3_last_error_message(void);

/**
 * Lower-case name of a precision value ("auto", "fp32", "fp16", "bf16"), or "unknown".
 *
 * Ownership: static string, never free it. Thread safety: any thread.
 */
const char *da3_precision_name(da3_precision precision);

/**
 * Creates a token (not cancelled) in `*out`.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (out is NULL).
 * Ownership: the caller owns `*out` and releases it with `da3_cancel_token_free`, after
 * every call that was given it has returned.
 * Thread safety: any thread.
 *
 * # Safety
 * `out` is NULL or valid for writing a pointer.
 */
enum da3_status da3_cancel_token_new(struct da3_cancel_token **out);

/**
 * Cancels: every call holding the token stops at its next check with `DA3_ERR_CANCELLED`,
 * and so does every later call given it, until `da3_cancel_token_reset`. Returns at once (it
 * does not wait for the calls to stop).
 *
 * Errors: `DA3_ERR_NULL_POINTER`.
 * Thread safety: any thread, also while calls use the token (that is its purpose); it
 * only sets an atomic flag, so it may be called from a signal handler's helper thread, a UI
 * thread or a timer.
 *
 * # Safety
 * `token` is NULL or a live token.
 */
enum da3_status da3_cancel_token_cancel(const struct da3_cancel_token *token);

/**
 * Clears the flag, so the token can be given to new calls. Calls that already stopped stay
 * stopped; a call still running that has not yet checked will run on.
 *
 * Errors: `DA3_ERR_NULL_POINTER`.
 * Thread safety: any thread.
 *
 * # Safety
 * `token` is NULL or a live token.
 */
enum da3_status da3_cancel_token_reset(const struct da3_cancel_token *token);

/**
 * Whether the token is cancelled now (1) or not (0); 0 for NULL. Thread safety: any thread.
 *
 * # Safety
 * `token` is NULL or a live token.
 */
bool da3_cancel_token_is_cancelled(const struct da3_cancel_token *token);

/**
 * Destroys a token. NULL is a no-op.
 *
 * Thread safety: no call may still hold it (free it after the calls given it returned).
 *
 * # Safety
 * `token` is NULL or a token from `da3_cancel_token_new` not yet freed.
 */
void da3_cancel_token_free(struct da3_cancel_token *token);

/**
 * Fills `*options` with the official defaults (process_res 504, upper-bound resize,
 * saddle-balanced reference view, camera-decoder pose, `align_to_input_ext_scale` 1, no known
 * cameras, no exported features) and sets `options->struct_size = struct_size`.
 * Pass `sizeof *options` (or `sizeof(da3_options)`) as `struct_size`: this is what lets
 * the struct grow in later versions without breaking compiled programs (see `da3_options`).
 *
 * Errors: `DA3_ERR_NULL_POINTER` if `options` is NULL; `DA3_ERR_INVALID_ARGUMENT` if
 * `struct_size` is not a valid size; `DA3_ERR_UNSUPPORTED` if it is larger than this
 * library's `da3_options` (built against a newer header). Only `struct_size` bytes are
 * written. Thread safety: any thread.
 *
 * # Safety
 * `options` is NULL or points to `struct_size` writable bytes.
 */
enum da3_status da3_options_default(struct da3_options *options, size_t struct_size);

/**
 * Checks `*options` the way `da3_infer` will (struct size, every enum value and flag,
 * process_res range, `extrinsics` and `intrinsics` both set or both NULL, `extrinsics_rows`,
 * pointer alignment, repeated feature layers) without needing a model, e.g. to validate user
 * settings at start-up. What needs the model or the view count is checked by `da3_infer`:
 * the camera values (finite, rigid, positive focal lengths), feature layers below the
 * backbone depth, and whether the model takes cameras or ray pose at all.
 * NULL means defaults and is valid.
 *
 * Errors: `DA3_ERR_INVALID_ARGUMENT` naming the field and its value; `DA3_ERR_NULL_POINTER`
 * for one camera pointer without the other, or a NULL feature list with a non-zero count;
 * `DA3_ERR_UNSUPPORTED` for a struct from a newer header. Thread safety: any thread.
 *
 * # Safety
 * `options` is NULL or points to a `da3_options` initialised by `da3_options_default`, whose
 * `export_feat_layers` is NULL or points to `export_feat_layer_count` readable values.
 */
enum da3_status da3_options_validate(const struct da3_options *options);

/**
 * Loads a model and returns a new handle in `*out`.
 *
 * `model` is a checkpoint directory (holding `config.json` and `model.safetensors`) or a
 * Hugging Face repo id (e.g. "depth-anything/DA3-LARGE-1.1") found in the local cache; nothing is
 * downloaded. `config.json`'s `model_name` picks the preset, as in the official package (the
 * 1.1 releases name the 1.0 presets: DA3-LARGE-1.1 is da3-large, DA3-GIANT-1.1 da3-giant,
 * DA3NESTED-GIANT-LARGE-1.1 da3nested-giant-large). A `model_name` that is no preset loads
 * from the resolved official architecture in `config.json`'s `config` tree, else in an
 * `official_config.json` beside it (how the tests' reduced nested model is described).
 *
 * `use_accelerate` turns on the accelerated path. Devices: one model replica on every
 * visible CUDA device (`CUDA_VISIBLE_DEVICES` decides which are visible), so concurrent calls
 * and the scenes of `da3_infer_scenes` use all GPUs, and a scene too large for one GPU is
 * split over them (see `da3_model_set_placement`); without it, one device. The environment
 * variable `DA3_DEVICES` (e.g. "cuda:0,cuda:1") lists the devices either way, as
 * `da3_create_on_devices` does. Runner: the reference view chosen on the device; in
 * bf16/fp16 the depth head's convolutions in that precision, channels-last, the backbone
 * features handed to it in that precision (the official keeps them in fp32), and fewer
 * element-wise passes in the backbone (RoPE from tables gathered once per forward, each
 * LayerScale + residual add in one pass; fp32 arithmetic); on a GPU also
 * that glue in kernels compiled at run time by NVRTC (QK-norm + RoPE in place in the qkv
 * projection, LayerNorms written in the compute precision, the residual update with the next
 * LayerNorm, and the depth head's upsampling and convolution bias epilogues; the same
 * arithmetic; where they cannot be compiled the library logs it once and runs libtorch's
 * operations) with each MLP's fc1 and GELU as one matrix product (the GELU's tanh form in
 * cuBLASLt's epilogue; `DA3_ACCEL_GELU=exact`: the official exact GELU), cuDNN's fused attention and, for any-view models without ray pose, known cameras or
 * exported features, the forward captured once per input shape in a CUDA graph and replayed
 * (the first call of a shape runs eagerly and captures; up to 4 shapes are kept, each holding
 * its activation memory). On a GPU, with it on or off, large inputs go to the device and
 * outputs come back through one page-locked host buffer, kept for the process (as large as
 * the largest input or output so far). A model loaded with it on a GPU sets libtorch's intra-op CPU thread
 * count to 1, for the whole process (libtorch has one such setting): the GPU path's CPU work is
 * small copies, and an idle OpenMP pool spinning on every core slows the preprocessing
 * threads. With it off the official numerics are reproduced; with it on
 * (bf16), depth stays within a median relative difference of 1 %, p99 3 % and max 10 %,
 * camera rotations within 2 degrees, translations within 1 % of the median depth of the fp32
 * reference (measured on da3-large: 0.3 %, 1.1 %, 2.2 %, 0.8 degrees, 0.2 %; README, "Accuracy
 * of the accelerated runner"). The metric, mono and nested models keep the median and p99 (and
 * the nested model its cameras) within that bound, but single pixels were measured up to 290 %
 * off (random weights): run them with it off where every pixel matters. In fp32 it changes no
 * number.
 *
 * `precision` is a `DA3_PRECISION_*` value: `DA3_PRECISION_AUTO` is bf16 on a GPU that
 * supports it (compute capability 8.0 and later), fp16 on older GPUs, fp32 on the CPU;
 * fp16/bf16 run the transformer's matrix products in that precision with normalisations and
 * the heads in fp32, like the official `torch.autocast`. The device (of a one-device model) is
 * a CUDA GPU if one is visible, else the CPU; the environment variable `DA3_DEVICE` (`cpu`,
 * `cuda`, `cuda:N`) overrides the choice: see `da3_model_device`.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (model or out is NULL), `DA3_ERR_INVALID_ARGUMENT`
 * (unknown precision, model not UTF-8), `DA3_ERR_MODEL_NOT_FOUND` (the message lists the
 * places tried), `DA3_ERR_CHECKPOINT` (corrupt or mismatched checkpoint; also a
 * `config.json`, `official_config.json` or `model.safetensors` that is no regular file, e.g.
 * a FIFO or a link to a device, a config over 1 MiB, a `model_name` that is empty, over 128
 * bytes or holds a control character), `DA3_ERR_IO` (a file of the checkpoint could not be
 * opened or read, or `model.safetensors` was truncated or rewritten while it loaded: the
 * weights are read, not memory-mapped, so such a change is this error, never a crash),
 * `DA3_ERR_UNSUPPORTED` (precision not available on the device), `DA3_ERR_TORCH`.
 *
 * The tensor table of `model.safetensors` (names, shapes, dtypes) is checked against the
 * architecture before any of the model's memory is allocated: a mismatched checkpoint fails
 * in milliseconds. The file is read once, each tensor straight into its own memory; removing
 * (unlinking) it during the load is harmless. On a GPU the camera encoder (any-view models;
 * 194 MiB of fp32 weights in da3-large) is kept in host memory until the first call with known
 * cameras, which copies it to the GPU once and keeps it there (that call takes the copy's
 * time); calls without cameras never hold it in GPU memory.
 *
 * Ownership: on success the caller owns `*out` and must release it with `da3_free`; on
 * failure `*out` is set to NULL. `model` is only read during the call.
 * Thread safety: any thread; handles are independent.
 *
 * # Safety
 * `model` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
 */
enum da3_status da3_create(const char *model,
                           bool use_accelerate,
                           da3_precision precision,
                           struct da3_model **out);

/**
 * Like `da3_create`, with one model replica on each device of `devices`, a comma-separated
 * list such as "cuda:0,cuda:1" (devices as numbered by CUDA, i.e. after
 * `CUDA_VISIBLE_DEVICES`), "cuda" (= "cuda:0") or "cpu,cpu" (two CPU replicas: tests, or
 * concurrency on a many-core CPU). The same device may repeat; CPU and CUDA may not be mixed
 * (the replicas share one precision, resolved on the first device).
 *
 * `da3_create` picks the devices itself: with `use_accelerate`, every visible CUDA device
 * (one replica each); without, one device (see `da3_create`); in both cases the environment
 * variable `DA3_DEVICES` (same syntax) overrides. Replicas load the same weights; each holds
 * a full copy in its device's memory.
 *
 * Errors: as `da3_create`, plus `DA3_ERR_INVALID_ARGUMENT` (an empty or malformed list, a
 * device index past the visible ones) and `DA3_ERR_UNSUPPORTED` (CUDA asked for but not
 * available).
 *
 * Ownership: on success the caller owns `*out` (release with `da3_free`); on failure `*out`
 * is NULL. `model` and `devices` are only read during the call.
 * Thread safety: any thread; handles are independent.
 *
 * # Safety
 * `model` and `devices` are NULL or NUL-terminated strings; `out` is NULL or valid for
 * writing a pointer.
 */
enum da3_status da3_create_on_devices(const char *model,
                                      bool use_accelerate,
                                      da3_precision precision,
                                      const char *devices,
                                      struct da3_model **out);

/**
 * Destroys a model handle and frees everything it owns (including the strings returned by
 * `da3_model_preset` and `da3_model_device`). NULL is a no-op.
 *
 * Results created from the model stay valid: they own their buffers.
 * Thread safety: no other thread may be using the handle.
 *
 * # Safety
 * `model` is NULL or a handle from `da3_create` not yet freed.
 */
void da3_free(struct da3_model *model);

/**
 * Official preset name of the loaded model, e.g. "da3-large"; NULL if `model` is NULL.
 *
 * Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
const char *da3_model_preset(const struct da3_model *model);

/**
 * Device the model runs on, e.g. "cpu" or "cuda:0" (the first replica's when it has
 * several: see `da3_model_replica_count`); NULL if `model` is NULL.
 *
 * Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
const char *da3_model_device(const struct da3_model *model);

/**
 * Precision actually in use (never `DA3_PRECISION_AUTO` for a live model), or
 * `DA3_PRECISION_AUTO` if `model` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
da3_precision da3_model_precision(const struct da3_model *model);

/**
 * Writes what the model predicts and accepts to `*flags`: an OR of `DA3_CAP_*` bits. Use it
 * before asking for an output or an input the model may not have (asking anyway is an
 * error, not a crash: `DA3_ERR_UNSUPPORTED` from `da3_infer`, `DA3_ERR_NOT_AVAILABLE` from
 * the result accessors). For the official presets:
 * - `da3-small` / `-base` / `-large` / `-giant`: `POSE | CONFIDENCE | KNOWN_CAMERAS | RAY_POSE`;
 * - `da3metric-large`: `SKY | CANONICAL_METRIC_DEPTH`; `da3mono-large`: `SKY`;
 * - `da3nested-giant-large`: `POSE | CONFIDENCE | SKY | METRIC_DEPTH | KNOWN_CAMERAS | RAY_POSE`.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (model or flags); `*flags` is untouched then.
 * Thread safety: any thread, also while inferences run (the answer is fixed at load).
 *
 * # Safety
 * `model` is NULL or a live handle; `flags` is NULL or writable.
 */
enum da3_status da3_model_capabilities(const struct da3_model *model, da3_capabilities *flags);

/**
 * Number of blocks of the model's backbone (12 for ViT-S/B, 24 for ViT-L, 40 for ViT-g; the
 * nested model: its any-view branch's): `da3_options.export_feat_layers` takes indices
 * below it. 0 if `model` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
uint32_t da3_model_backbone_depth(const struct da3_model *model);

/**
 * Number of replicas (one per device) the model runs on; 0 if `model` is NULL.
 * Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
size_t da3_model_replica_count(const struct da3_model *model);

/**
 * Device of replica `index` (0 <= index < `da3_model_replica_count`), e.g. "cuda:1"; NULL
 * (with a message) if `model` is NULL or `index` is out of range.
 *
 * Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
const char *da3_model_replica_device(const struct da3_model *model, size_t index);

/**
 * Sets how the following calls on `model` use several replicas (`DA3_PLACEMENT_*`); calls
 * already running keep their choice. With one replica every placement runs the same way.
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (unknown placement).
 * Thread safety: any thread, also while other threads run inferences on the model.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
enum da3_status da3_model_set_placement(const struct da3_model *model, da3_placement placement);

/**
 * The model's current placement (`DA3_PLACEMENT_*`); `DA3_PLACEMENT_AUTO` if `model` is
 * NULL. Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
da3_placement da3_model_placement(const struct da3_model *model);

/**
 * Fills `*out` with the memory statistics of the model's GPU (the first replica's when it
 * has several: `da3_model_replica_memory_stats` reads the others).
 *
 * The caller sets `out->struct_size = sizeof(da3_memory_stats)` first; the library writes
 * at most that many bytes (at most its own struct's size) and sets `struct_size` to what it
 * wrote.
 *
 * Errors: `DA3_ERR_NULL_POINTER`; `DA3_ERR_INVALID_ARGUMENT` (`struct_size` smaller than
 * the first version, 40); `DA3_ERR_NOT_AVAILABLE` when the model runs on the CPU (nothing
 * is written then); `DA3_ERR_UNSUPPORTED` when the GPU statistics cannot be read (the CUDA
 * support library `libda3_cuda_support.so` is missing; the message says where it looked).
 *
 * Ownership: `*out` is the caller's. Thread safety: any thread; the numbers cover every
 * model on that device.
 *
 * # Safety
 * `model` is NULL or a live handle; `out` is NULL or points to a writable struct of
 * `out->struct_size` bytes.
 */
enum da3_status da3_model_memory_stats(const struct da3_model *model, struct da3_memory_stats *out);

/**
 * Fills `*out` with the memory statistics of the GPU of replica `index` (0 <= index <
 * `da3_model_replica_count`), as `da3_model_memory_stats` does for the first: a model with a
 * replica per GPU is watched by reading each.
 *
 * Errors: as `da3_model_memory_stats`, and `DA3_ERR_INVALID_ARGUMENT` when `index` is out of
 * range. Ownership: `*out` is the caller's. Thread safety: any thread; the numbers cover
 * every model on that device.
 *
 * # Safety
 * As `da3_model_memory_stats`.
 */
enum da3_status da3_model_replica_memory_stats(const struct da3_model *model,
                                               size_t index,
                                               struct da3_memory_stats *out);

/**
 * Restarts the peaks of `da3_model_memory_stats` from the current usage of the model's GPU
 * (for every model on that device).
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_NOT_AVAILABLE` (the model runs on the CPU),
 * `DA3_ERR_UNSUPPORTED` (as for `da3_model_memory_stats`). Thread safety: any thread.
 *
 * # Safety
 * `model` is NULL or a live handle.
 */
enum da3_status da3_model_reset_peak_memory(const struct da3_model *model);

/**
 * Fills `*load_options` with the defaults (no thread settings, devices as `da3_create`, no
 * progress callback) and sets `struct_size`. Pass `sizeof *load_options`.
 *
 * Errors: `DA3_ERR_NULL_POINTER`; `DA3_ERR_INVALID_ARGUMENT` (a size that is no version's);
 * `DA3_ERR_UNSUPPORTED` (larger than this library's struct). Only `struct_size` bytes are
 * written. Thread safety: any thread.
 *
 * # Safety
 * `load_options` is NULL or points to `struct_size` writable bytes.
 */
enum da3_status da3_load_options_default(struct da3_load_options *load_options, size_t struct_size);

/**
 * Like `da3_create` (same `model`, `use_accelerate` and `precision`, same errors), with the
 * host in charge of the load through `load_options` (NULL: defaults, i.e. `da3_create`):
 * the devices (as `da3_create_on_devices`), libtorch's and preprocessing's thread counts,
 * and a progress callback that may abort the load. The environment's settings apply as for
 * `da3_create`; an explicit value in `load_options` wins over them.
 *
 * Errors: as `da3_create` and `da3_create_on_devices`, plus `DA3_ERR_CANCELLED` when the
 * progress callback returned false (nothing is kept: `*out` is NULL, the memory of the
 * partly loaded replicas is released), `DA3_ERR_INVALID_ARGUMENT` (a bad `struct_size`, a
 * non-zero `reserved_0`), `DA3_ERR_UNSUPPORTED` (a `struct_size` from a newer header).
 *
 * Ownership: on success the caller owns `*out` (release with `da3_free`); on failure `*out`
 * is NULL. `model`, `load_options` and its strings are only read during the call.
 * Thread safety: any thread; the thread count of libtorch is process-wide (see
 * `da3_load_options.torch_threads`).
 *
 * # Safety
 * `model` is NULL or a NUL-terminated string; `load_options` is NULL or initialised by
 * `da3_load_options_default`, its `devices` NULL or a NUL-terminated string and its
 * `progress` NULL or a function satisfying `da3_load_progress`' contract; `out` is NULL or
 * valid for writing a pointer.
 */
enum da3_status da3_create_with_options(const char *model,
                                        bool use_accelerate,
                                        da3_precision precision,
                                        const struct da3_load_options *load_options,
                                        struct da3_model **out);

/**
 * Sends libda3's notes to `callback` instead of stderr (process-wide: every model, every
 * thread); `callback` NULL restores stderr (lines prefixed "libda3: "). `user_data` is passed
 * back to every call and never touched by the library.
 *
 * Which notes: those at or above the level filter (`da3_log_set_level`; without it,
 * `DA3_LOG` read at each load, default `DA3_LOG_WARN`).
 *
 * Ownership: the library keeps `callback` and `user_data` until the next `da3_log_set`;
 * when that call returns, the previous callback is neither running nor called again, so its
 * `user_data` may be freed then.
 * Thread safety: any thread, at any time (it waits for notes being delivered); not from
 * inside the callback.
 *
 * Errors: `DA3_ERR_INVALID_ARGUMENT` when called from inside the log callback.
 *
 * # Safety
 * `callback` is NULL or a function satisfying `da3_log_callback`'s contract for `user_data`.
 */
enum da3_status da3_log_set(da3_log_callback callback, void *user_data);

/**
 * Sets the process-wide level filter (`DA3_LOG_OFF` to `DA3_LOG_DEBUG`) for the callback
 * and stderr alike. Once set here, it stays: later loads no longer apply the `DA3_LOG`
 * environment variable.
 *
 * Errors: `DA3_ERR_INVALID_ARGUMENT` for a value that is no `DA3_LOG_*` constant.
 * Thread safety: any thread, at any time (also from inside the log callback).
 */
enum da3_status da3_log_set_level(da3_log_level level);

/**
 * The process-wide level filter now (a `DA3_LOG_*` value). Thread safety: any thread.
 */
da3_log_level da3_log_get_level(void);

/**
 * Runs one scene made of `n_views` images (one per view, any sizes) and returns a new result
 * in `*out`.
 *
 * `options` may be NULL for the defaults. Arguments are checked in order: `out`, `model`,
 * `n_views` (0 is an error), `views` (NULL is an error), then each view (NULL data,
 * zero width or height, unknown format, stride smaller than width * bytes per pixel), then
 * the options (as `da3_options_validate`), then the known cameras' values for `n_views`
 * views; the first problem is reported, naming the argument (e.g. "views[1].stride",
 * "extrinsics of view 2").
 *
 * With known cameras in `options` the network is conditioned on them and the result is
 * aligned back to them (see `da3_options.extrinsics`, `da3_result_alignment_scale`);
 * `options.export_feat_layers` adds backbone features to the result (`da3_result_feature_*`).
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (also: non-finite or non-rigid
 * extrinsics, non-pinhole intrinsics, camera centres too degenerate to align to, a feature
 * layer beyond the backbone), `DA3_ERR_UNSUPPORTED` (the model cannot take known cameras or
 * ray pose: check `da3_model_capabilities` first), `DA3_ERR_TORCH`, `DA3_ERR_CANCELLED` (the
 * token in `options.cancel` was cancelled before or during the call; see `da3_cancel_token`).
 *
 * Ownership: pixel buffers are only read during the call (see `da3_image` for how many
 * bytes); on success the caller owns `*out` and must release it with `da3_result_free`; on
 * failure `*out` is NULL.
 * Thread safety: concurrent calls on one model are allowed and are serialised on the device.
 *
 * # Safety
 * `model` is NULL or a live handle; `views` is NULL or points to `n_views` `da3_image`s
 * whose `data` satisfy `da3_image`'s contract; `options` is NULL or initialised by
 * `da3_options_default`, its pointers satisfying `da3_options`' contract for `n_views`
 * views; `out` is NULL or valid for writing a pointer.
 */
enum da3_status da3_infer(const struct da3_model *model,
                          const struct da3_image *views,
                          size_t n_views,
                          const struct da3_options *options,
                          struct da3_result **out);

/**
 * Like `da3_infer`, for image files (PNG or JPEG) read from `paths[0..n_paths]`; known cameras
 * in `options` hold one camera per path, with intrinsics in the pixels of the files.
 *
 * Files are decoded as the official `PIL.Image.open(path).convert("RGB")` does, within
 * limits checked before anything of the image's size is allocated: a path must name a regular
 * file (symbolic links are followed; a device such as /dev/zero, a FIFO or a directory is
 * refused without being read) of at most `DA3_IMAGE_MAX_FILE_BYTES` bytes (never more is
 * read, even from a file that grows meanwhile), and its header may claim at most
 * `DA3_IMAGE_MAX_SIDE` pixels a side and `DA3_IMAGE_MAX_PIXELS` pixels in all. A JPEG whose
 * data ends before its last row (a truncated file) is an error, as in PIL; libjpeg's warnings
 * about corrupt data that still decodes are ignored, as in PIL. Memory: a file at the limits
 * takes at most about 2.5 GB while decoded (its bytes, the decoder's buffers: up to 8 bytes a
 * pixel for a 16-bit RGBA PNG, 6 for a progressive JPEG, and the RGB8 image); the call decodes
 * its files one after the other but keeps the RGB8 images (3 bytes a pixel, 512 MiB at the
 * pixel limit) of all of them until they are resized.
 *
 * Errors: as `da3_infer`, plus `DA3_ERR_IMAGE` naming a file that cannot be read or decoded:
 * missing or unreadable, not a regular file, over a limit (the message names the limit's macro
 * and the size the file has or claims), not PNG or JPEG, corrupt or truncated. On Unix, paths
 * are raw bytes (any file name works); elsewhere UTF-8.
 *
 * Ownership: the path strings are only read during the call; on success the caller owns
 * `*out` (release with `da3_result_free`); on failure `*out` is NULL.
 * Thread safety: as `da3_infer`.
 *
 * # Safety
 * `model` is NULL or a live handle; `paths` is NULL or points to `n_paths` pointers, each
 * NULL or a NUL-terminated string; `options` as for `da3_infer` (with `n_paths` views);
 * `out` is NULL or valid for writing a pointer.
 */
enum da3_status da3_infer_files(const struct da3_model *model,
                                const char *const *paths,
                                size_t n_paths,
                                const struct da3_options *options,
                                struct da3_result **out);

/**
 * Runs `scene_count` independent scenes (each its own forward: no attention across scenes)
 * and returns one result per scene, in input order. The scenes are spread over the model's
 * replicas (decoding and resizing overlap the forwards), so on a model with several GPUs a
 * batch runs about as many times faster; with one replica they run one after the other.
 * Under `DA3_PLACEMENT_SHARD` they run one after the other, each split over all replicas.
 *
 * Partial failure: every scene succeeds or fails on its own (bad views, out of device
 * memory, ...). On return, for every scene `i`, `results[i]` is a new result or NULL, and
 * `statuses[i]` (if `statuses` is not NULL) is `DA3_OK` or that scene's error. The call
 * returns `DA3_OK` when every scene succeeded; otherwise the status of the first failed
 * scene, with `da3_last_error_message()` naming it ("scenes[2]: ...") and counting the
 * failures. An invalid call (NULL `model` or `results`, `scene_count` 0, NULL `scenes`,
 * bad options, options carrying known cameras: those belong to one scene, use `da3_infer`)
 * fails as a whole: every `results[i]` is NULL and every `statuses[i]` is that error. Each
 * scene is checked like the views of `da3_infer` ("scenes[i]: views[j].stride ...").
 *
 * Ownership: pixel buffers are only read during the call; the caller owns every non-NULL
 * `results[i]` (also when the call returns an error) and releases each with
 * `da3_result_free`. `results` and `statuses` are caller-provided arrays of `scene_count`
 * elements.
 * Thread safety: as `da3_infer`: any number of threads may call it (and `da3_infer`) on one
 * model at once; the scenes of all calls share the replicas first come, first served.
 *
 * # Safety
 * `model` is NULL or a live handle; `scenes` is NULL or points to `scene_count` scenes whose
 * `views` satisfy `da3_infer`'s contract; `options` as for `da3_infer`; `results` is NULL or
 * valid for writing `scene_count` pointers; `statuses` is NULL or valid for writing
 * `scene_count` `da3_status` values.
 */
enum da3_status da3_infer_scenes(const struct da3_model *model,
                                 const struct da3_scene *scenes,
                                 size_t scene_count,
                                 const struct da3_options *options,
                                 struct da3_result **results,
                                 enum da3_status *statuses);

/**
 * Runs the network on views the caller has already preprocessed (no decoding, no resize),
 * e.g. to time the forward alone, and returns a new result in `*out`.
 *
 * `images` holds `n_views * 3 * height * width` floats: per view, the R, G and B planes
 * (row-major, `height` rows of `width`), each pixel scaled to [0, 1] and normalised with the
 * ImageNet mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225), as the
 * official `InputProcessor` does. `height` and `width` must be multiples of 14. The result's
 * size is `width` x `height` and its intrinsics are in these pixels. `options` may be NULL;
 * only `ref_view_strategy` and `use_ray_pose` apply (`process_res` and `resize_method` are
 * checked but unused).
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (zero views, a size that is
 * not a multiple of 14, options carrying known cameras: those go through `da3_infer`),
 * `DA3_ERR_UNSUPPORTED`, `DA3_ERR_TORCH`.
 *
 * Ownership: `images` is only read during the call; on success the caller owns `*out`
 * (release with `da3_result_free`); on failure `*out` is NULL.
 * Thread safety: as `da3_infer`.
 *
 * # Safety
 * `model` is NULL or a live handle; `images` is NULL or points to
 * `n_views * 3 * height * width` readable floats; `options` as for `da3_infer`; `out` is NULL
 * or valid for writing a pointer.
 */
enum da3_status da3_infer_preprocessed(const struct da3_model *model,
                                       const float *images,
                                       size_t n_views,
                                       uint32_t height,
                                       uint32_t width,
                                       const struct da3_options *options,
                                       struct da3_result **out);

/**
 * Like `da3_infer`, for views already in CUDA memory (`da3_cuda_image`): they are converted,
 * resized and normalised on their GPU with the same arithmetic as `da3_infer` on the host
 * (the same bytes: OpenCV's weights, order of operations and rounding), so no frame crosses
 * the bus. The result holds every map in host memory as from `da3_infer`, and, as
 * `device_outputs` asks (`DA3_DEVICE_OUTPUT_DEPTH`, `DA3_DEVICE_OUTPUT_CONFIDENCE`, or 0),
 * the depth and confidence also in GPU memory (`da3_result_depth_device`), for a renderer or
 * a robot's GPU code that would otherwise upload them again.
 *
 * `cuda_stream` is the `cudaStream_t` the views were produced on (NULL: the legacy default
 * stream): the library's reads of the views are ordered after the work queued on it when the
 * call is made (an event recorded there and waited for on the GPU, no host wait), so a
 * decoder or renderer need not synchronise first. When the call returns, the views have been
 * read (the caller may overwrite or free them) and the maps in GPU memory are complete (any
 * stream may read them).
 *
 * Requires a model on a GPU (else `DA3_ERR_UNSUPPORTED`); the views may be on any GPU, all on
 * one (the scene then moves to the replica's GPU if that is another one). Arguments are
 * checked as in `da3_infer` (`out`, `model`, `n_views`, `views`, each view, `device_outputs`,
 * the options, the cameras), then each view against CUDA's allocation (see
 * `da3_cuda_image`).
 *
 * Errors: as `da3_infer`, plus `DA3_ERR_UNSUPPORTED` (a model on the CPU, or no CUDA support
 * library) and `DA3_ERR_INVALID_ARGUMENT` for a view CUDA does not vouch for or an unknown bit
 * in `device_outputs`.
 *
 * Ownership: the views are only read during the call; on success the caller owns `*out`
 * (release with `da3_result_free`, which also frees its maps in GPU memory); on failure
 * `*out` is NULL.
 * Thread safety: as `da3_infer`.
 *
 * # Safety
 * `model` is NULL or a live handle; `views` is NULL or points to `n_views` `da3_cuda_image`s
 * whose memory stays allocated until the call returns; `cuda_stream` is NULL or a live
 * stream of the views' GPU; `options` and `out` as for `da3_infer`.
 */
enum da3_status da3_infer_cuda(const struct da3_model *model,
                               const struct da3_cuda_image *views,
                               size_t n_views,
                               const struct da3_options *options,
                               void *cuda_stream,
                               da3_device_outputs device_outputs,
                               struct da3_result **out);

/**
 * Number of views in the result (N), or 0 if `result` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
size_t da3_result_view_count(const struct da3_result *result);

/**
 * Width W of every per-pixel map: the processed (network input) width, not the input
 * image's. 0 if `result` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
uint32_t da3_result_width(const struct da3_result *result);

/**
 * Height H of every per-pixel map (the processed height). 0 if `result` is NULL.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
uint32_t da3_result_height(const struct da3_result *result);

/**
 * Depth of view `view`: H*W floats, row-major. NULL (with a message) if `result` is NULL or
 * `view >= da3_result_view_count(result)`. Z-depth along the optical axis (not the distance
 * along the ray), pixel (u, v) at the integer coordinates (u, v) of `da3_result_intrinsics`;
 * units: see `da3_result_is_metric` (relative for the any-view and mono models, a 300-pixel
 * focal length for da3metric-large, metres for the nested model). World points:
 * `da3_result_points`; at the input size: `da3_result_map_at_input`.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_depth(const struct da3_result *result, size_t view);

/**
 * Depth confidence of view `view`: H*W floats, row-major. NULL (with a message) if `result`
 * is NULL, `view` is out of range, or the model predicts no confidence (`da3metric-large`,
 * `da3mono-large`).
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_confidence(const struct da3_result *result, size_t view);

/**
 * Depth of all views at once: N*H*W floats, view-major then row-major (the layout of an
 * (N, H, W) array). NULL if `result` is NULL.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_depth_all(const struct da3_result *result);

/**
 * Confidence of all views at once: N*H*W floats, same layout as `da3_result_depth_all`.
 * NULL if `result` is NULL or the model predicts no confidence.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_confidence_all(const struct da3_result *result);

/**
 * Whether the result holds a confidence map (`da3_result_confidence`): the models with
 * `DA3_CAP_CONFIDENCE`. False if `result` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
bool da3_result_has_confidence(const struct da3_result *result);

/**
 * Sky map of view `view`: H*W floats, row-major, the sky head's output after its ReLU (>= 0;
 * the official treats < 0.3 as non-sky when filling and aligning, >= 0.5 as its sky mask).
 * Models with a sky head: `da3metric-large`, `da3mono-large`, and `da3nested-giant-large`
 * (its metric branch's map). NULL with `DA3_ERR_NOT_AVAILABLE`'s message for other models,
 * and NULL if `result` is NULL or `view` is out of range.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_sky(const struct da3_result *result, size_t view);

/**
 * Sky maps of all views at once: N*H*W floats, same layout as `da3_result_depth_all`. NULL
 * if `result` is NULL or the model has no sky head (see `da3_result_sky`).
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_sky_all(const struct da3_result *result);

/**
 * Whether the result holds a sky map (`da3_result_sky`): the models with `DA3_CAP_SKY`.
 * False if `result` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
bool da3_result_has_sky(const struct da3_result *result);

/**
 * Writes the depth of view `view` as an 8-bit RGB PNG at `path`, for people to look at:
 * inverse depth normalised between its 2nd and 98th percentiles, turbo colours (near = red,
 * far = blue), invalid pixels black. Overwrites an existing file.
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range),
 * `DA3_ERR_IO` (cannot create or write the file), `DA3_ERR_IMAGE` (encoding failed).
 * Thread safety: any thread (distinct paths).
 *
 * # Safety
 * `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
 */
enum da3_status da3_result_write_depth_png(const struct da3_result *result,
                                           size_t view,
                                           const char *path);

/**
 * Number of warnings the result carries: conditions that change how it should be read,
 * e.g. `metric_alignment_skipped` when a nested model saw (almost) only sky and returned
 * relative depth instead of metres (the official fails an assertion there). 0 normally and
 * if `result` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
size_t da3_result_warning_count(const struct da3_result *result);

/**
 * Warning `index` as "code: explanation", e.g. "metric_alignment_skipped: ...". The codes
 * are stable identifiers: `metric_alignment_skipped`, `empty_alignment_mask`. NULL if
 * `result` is NULL or `index` is out of range.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const char *da3_result_warning(const struct da3_result *result, size_t index);

/**
 * Kind of warning `index` (a `DA3_WARNING_*` value), for branching without parsing
 * `da3_result_warning`'s text. `DA3_WARNING_NONE` (with a message) if `result` is NULL or
 * `index` is out of range. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
da3_warning da3_result_warning_code(const struct da3_result *result, size_t index);

/**
 * Destroys a result and its buffers; every pointer obtained from it becomes invalid.
 * NULL is a no-op. Thread safety: no other thread may be using the result.
 *
 * Its maps of 1 MiB or more (depth, confidence, sky, features) are kept for the next results'
 * maps, up to 256 MiB in all for the process: writing a result into fresh memory costs a page
 * fault per 4 KiB (about 21,000 per call at 64 views of 336x504), memory already written does
 * not.
 *
 * # Safety
 * `result` is NULL or a result from `da3_infer`/`da3_infer_files` not yet freed.
 */
void da3_result_free(struct da3_result *result);

/**
 * Whether the result holds cameras (extrinsics and intrinsics); false for models without a
 * camera head, and if `result` is NULL. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
bool da3_result_has_cameras(const struct da3_result *result);

/**
 * Copies the world-to-camera extrinsics of view `view` into `out`: 12 floats, a 3x4
 * row-major matrix [R | t] in the OpenCV convention (x right, y down, z forward).
 *
 * Errors: `DA3_ERR_NULL_POINTER` (result or out), `DA3_ERR_INVALID_ARGUMENT` (view out of
 * range), `DA3_ERR_NOT_AVAILABLE` (no cameras, see `da3_result_has_cameras`). `out` is left
 * untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out` is NULL or points to 12 writable floats.
 */
enum da3_status da3_result_extrinsics(const struct da3_result *result, size_t view, float *out);

/**
 * Copies the pinhole intrinsics of view `view` into `out`: 9 floats, a 3x3 row-major matrix
 * [fx 0 cx; 0 fy cy; 0 0 1] in pixels of the processed image (W x H), pixel (u, v) of the maps
 * at the integer coordinates (u, v) (as the official unprojects). In the input image's pixels:
 * `da3_result_intrinsics_at_input`.
 *
 * Errors: as `da3_result_extrinsics`. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out` is NULL or points to 9 writable floats.
 */
enum da3_status da3_result_intrinsics(const struct da3_result *result, size_t view, float *out);

/**
 * Whether depth and extrinsic translations are in metres: true for `da3nested-giant-large`
 * once its metric alignment ran (the official `is_metric`); false otherwise, and if `result`
 * is NULL. (`da3metric-large` depth is the official raw output, for a 300-pixel focal
 * length: metres = depth * (fx + fy) / 2 / 300 with the processed-image intrinsics.)
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
bool da3_result_is_metric(const struct da3_result *result);

/**
 * Writes the nested model's metric scale factor (the least-squares factor that took the
 * any-view depth and translations to metres, the official `scale_factor`) to `*out`.
 * `DA3_ERR_NOT_AVAILABLE` when the model is not nested or the alignment was skipped (see
 * `da3_result_warning`); `*out` is left alone then.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out` is NULL or writable.
 */
enum da3_status da3_result_scale_factor(const struct da3_result *result, float *out);

/**
 * Writes the scale of the alignment to the known cameras to `*out`: s of the similarity
 * taking the given camera centres onto the predicted ones (predicted ~ s * given; the scale
 * of the official `_align_to_input_extrinsics_intrinsics`). With
 * `align_to_input_ext_scale` 1 the depth was divided by it; with 0 it was not.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (result or out), `DA3_ERR_NOT_AVAILABLE` when the call had
 * no known cameras; `*out` is untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out` is NULL or writable.
 */
enum da3_status da3_result_alignment_scale(const struct da3_result *result, float *out);

/**
 * Number of exported backbone features in the result: `da3_options.export_feat_layer_count`
 * of the call (0 by default, and if `result` is NULL). Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
size_t da3_result_feature_count(const struct da3_result *result);

/**
 * Describes exported feature `index` (0 <= index < `da3_result_feature_count`; features come
 * in the order of `da3_options.export_feat_layers`): `*layer` = its backbone block,
 * `shape[0..4]` = (N, H / 14, W / 14, C): views in input order, the patch grid of the
 * processed image, C the backbone width (384 ViT-S, 768 ViT-B, 1024 ViT-L, 1536 ViT-g).
 * The official `aux["feat_layer_<layer>"]`: patch tokens after the backbone's final
 * LayerNorm, camera token dropped.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (result, layer or shape), `DA3_ERR_INVALID_ARGUMENT`
 * (index out of range); the outputs are untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `layer` is NULL or writable; `shape` is NULL or points
 * to 4 writable `size_t`s.
 */
enum da3_status da3_result_feature_info(const struct da3_result *result,
                                        size_t index,
                                        uint32_t *layer,
                                        size_t *shape);

/**
 * Data of exported feature `index`: N*(H/14)*(W/14)*C floats, row-major in the shape given by
 * `da3_result_feature_info`. NULL (with a message) if `result` is NULL or `index` is out of
 * range.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_feature_data(const struct da3_result *result, size_t index);

/**
 * Depth of view `view` in GPU memory: H*W floats, row-major, the same values as
 * `da3_result_depth(result, view)`, on CUDA device `da3_result_device(result)`. NULL (with a
 * message) if `result` is NULL, `view` is out of range, or the result keeps no depth on the GPU
 * (it was not asked for with `DA3_DEVICE_OUTPUT_DEPTH` in `da3_infer_cuda`). Views follow one
 * another: view `v` starts H*W floats after view `v - 1`.
 *
 * Ownership: device memory owned by the result (from libda3's allocator on that GPU), valid
 * until `da3_result_free(result)`; never free it, and do not write it. It is complete when the
 * `da3_infer_cuda` call returns: any stream may read it.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_depth_device(const struct da3_result *result, size_t view);

/**
 * Depth confidence of view `view` in GPU memory, as `da3_result_depth_device` (asked for with
 * `DA3_DEVICE_OUTPUT_CONFIDENCE`; NULL also for models that predict no confidence).
 *
 * Ownership: as `da3_result_depth_device`.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const float *da3_result_confidence_device(const struct da3_result *result, size_t view);

/**
 * The CUDA device ordinal of the result's maps in GPU memory, or -1 (with a message) if
 * `result` is NULL or keeps none.
 *
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
int32_t da3_result_device(const struct da3_result *result);

/**
 * Writes the world-space point of every pixel of view `view` to `out_xyz`: W*H*3 floats
 * (W, H = `da3_result_width`, `_height`), row-major, pixel (u, v) at `(v * W + u) * 3`, as x,
 * y, z: `X = R^T (depth(u, v) * K^-1 [u v 1]^T - t)` with the view's predicted (or aligned
 * known) camera. Pixels whose depth is not finite give NaN. Units are the depth's (see
 * `da3_result_is_metric`). The caller owns the buffer (the result holds no copy).
 *
 * Errors: `DA3_ERR_NULL_POINTER` (result or out_xyz), `DA3_ERR_INVALID_ARGUMENT` (view out of
 * range, singular intrinsics), `DA3_ERR_NOT_AVAILABLE` (no cameras: `da3_result_has_cameras`).
 * `out_xyz` is untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out_xyz` is NULL or writable for W*H*3 floats.
 */
enum da3_status da3_result_points(const struct da3_result *result, size_t view, float *out_xyz);

/**
 * Writes the size of the image the caller gave as view `view` (before the resize and crops
 * of the preprocessing) to `*width` and `*height`; the processed size for
 * `da3_infer_preprocessed` (no resize there).
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range); outputs
 * untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `width` and `height` are NULL or writable.
 */
enum da3_status da3_result_input_size(const struct da3_result *result,
                                      size_t view,
                                      uint32_t *width,
                                      uint32_t *height);

/**
 * Resamples map `map` (`DA3_MAP_*`) of view `view` to the view's input size and writes it to
 * `out` (width*height floats, row-major), where `width` x `height` must be
 * `da3_result_input_size`. Each input pixel's centre is taken through the preprocessing's
 * resizes (OpenCV's half-pixel centres: x -> (x + 0.5) * to / from - 0.5) and crops (x ->
 * x - left) into the processed map, and sampled with `interpolation`
 * (`DA3_INTERPOLATION_*`). Input pixels a crop removed (more than half a pixel outside the
 * processed image) get NaN; within that half pixel, the edge value.
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range, unknown map or
 * interpolation, a size other than the input size), `DA3_ERR_NOT_AVAILABLE` (the result holds
 * no such map). `out` is untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out` is NULL or writable for width*height floats.
 */
enum da3_status da3_result_map_at_input(const struct da3_result *result,
                                        size_t view,
                                        da3_map map,
                                        da3_interpolation interpolation_,
                                        float *out,
                                        uint32_t width,
                                        uint32_t height);

/**
 * Copies the intrinsics of view `view` in the pixels of its input image into `out` (9 floats,
 * row-major): the processed intrinsics (`da3_result_intrinsics`) with the preprocessing's
 * crops and resizes undone, the inverse of how the official carries a camera into the
 * processed image (rows of K scaled by each resize ratio, principal point shifted by each crop).
 *
 * Errors: as `da3_result_intrinsics`. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out` is NULL or writable for 9 floats.
 */
enum da3_status da3_result_intrinsics_at_input(const struct da3_result *result,
                                               size_t view,
                                               float *out);

/**
 * Maps processed pixel (x, y) of view `view` to its input image's pixel coordinates with
 * `mapping` (`DA3_PIXEL_MAPPING_SAMPLE` or `_CAMERA`, see them) and writes them to
 * `out_xy[0]`, `out_xy[1]`. Any real (x, y) is accepted (points outside the image map
 * linearly). For `da3_infer_preprocessed` results both are the identity.
 *
 * Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range, unknown
 * mapping); `out_xy` untouched on failure. Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result; `out_xy` is NULL or writable for 2 doubles.
 */
enum da3_status da3_result_pixel_to_input(const struct da3_result *result,
                                          size_t view,
                                          double x,
                                          double y,
                                          da3_pixel_mapping mapping,
                                          double *out_xy);

/**
 * The processed image of view `view` as RGB8: W*H*3 bytes, row-major (the network input with
 * the ImageNet normalisation undone: exactly the resized and cropped pixels for images the
 * library preprocessed). These are the colours of the exported points. Results of
 * `da3_infer_preprocessed` keep none (recovering them from the caller's floats cost about 3 ms
 * a view on every call, measured on the H200 machine): NULL with `DA3_ERR_NOT_AVAILABLE`, and
 * their exports are white. NULL (with a message) if `result` is NULL, `view` is out of range
 * or the result keeps no colours.
 *
 * Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
 * Thread safety: any thread.
 *
 * # Safety
 * `result` is NULL or a live result.
 */
const uint8_t *da3_result_colors(const struct da3_result *result, size_t view);

/**
 * The point cloud of every view (one file) as binary little-endian PLY at `path`: one vertex
 * per kept pixel with `x y z` (float, world frame, the unit of the depth), `red green blue`
 * (uchar, the processed image's colour: `da3_result_colors`) and `confidence` (float; NaN
 * for models without confidence). Kept: pixels of finite positive depth whose confidence is
 * at least `min_confidence` and at least the `confidence_percentile`-th percentile (0..100,
 * numpy's linear percentile) of all views' non-sky confidence, and not sky with
 * `DA3_EXPORT_DROP_SKY`. 0 and 0 keep every valid pixel. Writes the number of points to
 * `*points_written` when it is not NULL.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (result, path), `DA3_ERR_INVALID_ARGUMENT` (unknown flags,
 * percentile outside 0..100), `DA3_ERR_NOT_AVAILABLE` (no cameras, or a confidence filter on a
 * result without confidence), `DA3_ERR_IO` (the file). Thread safety: any thread (distinct
 * paths).
 *
 * # Safety
 * `result` is NULL or a live result; `path` is NULL or a NUL-terminated string;
 * `points_written` is NULL or writable.
 */
enum da3_status da3_result_write_ply(const struct da3_result *result,
                                     const char *path,
                                     float min_confidence,
                                     float confidence_percentile,
                                     da3_export_flags flags,
                                     size_t *points_written);

/**
 * The point cloud of every view and each camera's frustum as a glTF 2.0 binary (`.glb`) at
 * `path`, laid out as the official `export_to_glb`: the first camera's frame turned to glTF
 * axes (x right, y up, z backward) and centred on the points' median; the points one POINTS
 * primitive with RGBA8 colours, each frustum a LINES primitive sized 3 % of the scene's
 * 5th-95th percentile diagonal (`DA3_EXPORT_NO_CAMERAS`: none). No random down-sampling.
 * The points kept and the arguments: as `da3_result_write_ply`.
 *
 * Errors: as `da3_result_write_ply`. Thread safety: any thread (distinct paths).
 *
 * # Safety
 * As `da3_result_write_ply`.
 */
enum da3_status da3_result_write_glb(const struct da3_result *result,
                                     const char *path,
                                     float min_confidence,
                                     float confidence_percentile,
                                     da3_export_flags flags,
                                     size_t *points_written);

/**
 * A COLMAP text model in directory `dir` (created if missing): `cameras.txt` (camera i+1 of
 * view i, PINHOLE fx fy cx cy), `images.txt` (image i+1: the world-to-camera rotation as a
 * unit quaternion QW QX QY QZ with QW >= 0, the translation, camera i+1, its name, and its
 * 2D observations), `points3D.txt` (the kept points, as `da3_result_write_ply`, with colour,
 * error 0 and their one observation). Cameras and 2D points are in processed pixels
 * (W x H), or with `DA3_EXPORT_INPUT_PIXELS` in each view's input pixels
 * (`da3_result_intrinsics_at_input`, the 2D points mapped consistently with them: through each
 * crop x + left, each resize x * from / to, as the official COLMAP export scales them); pixel
 * centres at integer coordinates as the network's intrinsics (COLMAP's own convention has
 * them at + 0.5).
 * `names`: NULL (view_0000.png, ...) or one UTF-8 name per view without white space.
 *
 * Errors: as `da3_result_write_ply`, and `DA3_ERR_INVALID_ARGUMENT` for a NULL, non-UTF-8,
 * empty or spaced name. Thread safety: any thread (distinct directories).
 *
 * # Safety
 * As `da3_result_write_ply`; `dir` is NULL or a NUL-terminated string; `names` is NULL or
 * points to `da3_result_view_count(result)` pointers, each NULL or a NUL-terminated string.
 */
enum da3_status da3_result_write_colmap(const struct da3_result *result,
                                        const char *dir,
                                        const char *const *names,
                                        float min_confidence,
                                        float confidence_percentile,
                                        da3_export_flags flags,
                                        size_t *points_written);

/**
 * Depth of view `view` as a 16-bit greyscale PNG at `path` (processed size): each pixel
 * round(depth * scale) clamped to 1..65535, and 0 where the depth is not finite or not
 * positive (no depth). `scale` <= 0 picks 65535 / the view's largest depth (full range,
 * relative); for metric depth pass e.g. 1000 (millimetres). Writes the scale used to
 * `*scale_used` when it is not NULL: depth = value / scale.
 *
 * Errors: `DA3_ERR_NULL_POINTER` (result, path), `DA3_ERR_INVALID_ARGUMENT` (view out of range),
 * `DA3_ERR_IO` (the file). Thread safety: any thread (distinct paths).
 *
 * # Safety
 * `result` is NULL or a live result; `path` is NULL or a NUL-terminated string; `scale_used`
 * is NULL or writable.
 */
enum da3_status da3_result_write_depth_png16(const struct da3_result *result,
                                             size_t view,
                                             const char *path,
                                             float scale,
                                             float *scale_used);

/**
 * Depth of view `view` as PFM at `path` (processed size; `Pf`, float32 little-endian, rows
 * bottom to top as the format stores them; values as `da3_result_depth`).
 *
 * Errors: as `da3_result_write_depth_png16`. Thread safety: any thread (distinct paths).
 *
 * # Safety
 * `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
 */
enum da3_status da3_result_write_depth_pfm(const struct da3_result *result,
                                           size_t view,
                                           const char *path);

/**
 * Depth of view `view` as a NumPy `.npy` file at `path` (float32 `<f4`, shape (H, W), C
 * order; values as `da3_result_depth`).
 *
 * Errors: as `da3_result_write_depth_png16`. Thread safety: any thread (distinct paths).
 *
 * # Safety
 * `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
 */
enum da3_status da3_result_write_depth_npy(const struct da3_result *result,
                                           size_t view,
                                           const char *path);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* DA3_H */
