//! Arbitrary bytes through the library's image decoding (PNG or JPEG, recognised by content)
//! with its size limits: an error or an image within the limits, never a crash, a hang or an
//! allocation beyond the limits.
#![no_main]
use da3::ffi::fuzzing::decode_image;
use da3::preprocess::{MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = decode_image(data) {
        let (width, height) = (image.width as u64, image.height as u64);
        assert!(width > 0 && height > 0);
        assert!(image.width <= MAX_IMAGE_SIDE && image.height <= MAX_IMAGE_SIDE);
        assert!(width * height <= MAX_IMAGE_PIXELS);
        assert_eq!(image.data.len() as u64, width * height * 3);
    }
});
