//! Arbitrary bytes through the library's image decoding (PNG or JPEG, recognised by content)
//! with its size limits: an error or an image within the limits, never a crash, a hang or an
//! allocation beyond the limits.
//!
//! The pixel limit is lowered to one megapixel (same code, another value): a few bytes can
//! legally describe a 179-megapixel image (scan data cut by a marker decodes as a whole grey
//! image, in PIL too), and each such decode would cost the fuzzer seconds.
#![no_main]
use da3::ffi::fuzzing::{decode_image_within, ImageLimits};
use libfuzzer_sys::fuzz_target;

const LIMITS: ImageLimits = ImageLimits { max_pixels: 1 << 20, max_side: ImageLimits::DEFAULT.max_side };

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = decode_image_within(data, LIMITS) {
        let (width, height) = (image.width as u64, image.height as u64);
        assert!(width > 0 && height > 0);
        assert!(image.width <= LIMITS.max_side && image.height <= LIMITS.max_side);
        assert!(width * height <= LIMITS.max_pixels);
        assert_eq!(image.data.len() as u64, width * height * 3);
    }
});
