//! Image files to RGB8 the way the official `PIL.Image.open(path).convert("RGB")` does, with
//! bounds a hostile file cannot get past: the file is read only if it is a regular file no
//! larger than `MAX_IMAGE_FILE_BYTES`, and the size a header claims is checked against
//! `MAX_IMAGE_PIXELS` / `MAX_IMAGE_SIDE` before any pixel buffer is allocated.
use std::io::{Cursor, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::image_input::RgbImage;

/// Most pixels an image may have: PIL's own refusal threshold (`Image.open` raises
/// `DecompressionBombError` above `2 * Image.MAX_IMAGE_PIXELS` = 178,956,970), so the library
/// refuses exactly the sizes the official pipeline refuses. It leaves room for the largest
/// camera sensors (151 megapixels: 14204 x 10652), and its RGB8 image is 512 MiB.
pub const MAX_IMAGE_PIXELS: u64 = 178_956_970;
/// Longest side, in pixels: the largest a JPEG can declare (libjpeg's `JPEG_MAX_DIMENSION`),
/// applied to PNG as well so both formats have the same bounds.
pub const MAX_IMAGE_SIDE: u32 = 65_500;
/// Largest image file, in bytes (512 MiB): the uncompressed RGB8 size of an image at
/// `MAX_IMAGE_PIXELS`, so any 8-bit photo under the pixel limit fits even stored without
/// compression; real JPEGs of 150-megapixel cameras are well under 100 MB.
pub const MAX_IMAGE_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// The size limits a decode checks from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_pixels: u64,
    pub max_side: u32,
}

impl ImageLimits {
    /// The library's limits (`DA3_IMAGE_MAX_PIXELS`, `DA3_IMAGE_MAX_SIDE`). Lower ones serve
    /// the fuzzer, whose inputs would otherwise spend seconds on every legal 179-megapixel
    /// decode (a few bytes of scan data followed by a marker decode as a whole grey image,
    /// as in PIL).
    pub const DEFAULT: ImageLimits = ImageLimits { max_pixels: MAX_IMAGE_PIXELS, max_side: MAX_IMAGE_SIDE };

    /// The PNG decoder's allocation bound: a 16-bit RGBA image (8 bytes a pixel, PNG's
    /// widest) at the pixel limit, so that the pixel limit, checked first, is what decides.
    fn png_decode_bytes(self) -> u64 {
        8 * self.max_pixels
    }
}

/// Decodes a PNG or JPEG file to RGB8 the way the official `PIL.Image.open(path).convert("RGB")`
/// does: alpha dropped, grey replicated, no EXIF rotation. JPEG goes through libjpeg-turbo's
/// decoder (as in PIL), since other decoders differ by a few levels on many pixels.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let image_err = |reason: String| Error::Image { path: path.to_owned(), reason };
    let bytes = read_image_file(path).map_err(image_err)?;
    decode_image(&bytes).map_err(image_err)
}

/// The bytes of the regular file at `path` (symbolic links followed), refused before reading
/// when it is something else (a device, a FIFO, a directory) or larger than
/// `MAX_IMAGE_FILE_BYTES`; never more than that limit is read, even from a file that grows
/// meanwhile.
pub fn read_image_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A FIFO blocks `open` until a writer appears: open without waiting, then look at what it is.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| e.to_string())?;
    let metadata = file.metadata().map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err(format!("not a regular file but {}: only image files are read", file_kind(&metadata.file_type())));
    }
    if metadata.len() > MAX_IMAGE_FILE_BYTES {
        return Err(too_large_file(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(MAX_IMAGE_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(too_large_file(bytes.len() as u64));
    }
    Ok(bytes)
}

fn too_large_file(len: u64) -> String {
    format!("the file has {len} bytes or more, over the limit of {MAX_IMAGE_FILE_BYTES} bytes (DA3_IMAGE_MAX_FILE_BYTES)")
}

fn file_kind(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

/// Decodes PNG or JPEG bytes (recognised by their content) to RGB8 within the size limits.
pub fn decode_image(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    decode_image_within(bytes, ImageLimits::DEFAULT)
}

/// `decode_image` with other size limits.
pub fn decode_image_within(bytes: &[u8], limits: ImageLimits) -> std::result::Result<RgbImage, String> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return decode_jpeg(bytes, limits);
    }
    decode_png(bytes, limits)
}

/// Refuses a claimed size over the side or pixel limit, naming it.
fn check_size(format: &str, width: u64, height: u64, limits: ImageLimits) -> std::result::Result<(), String> {
    let ImageLimits { max_pixels, max_side } = limits;
    if width > max_side as u64 || height > max_side as u64 {
        return Err(format!(
            "the {format} claims {width}x{height} pixels, a side over the limit of {max_side} (DA3_IMAGE_MAX_SIDE)"
        ));
    }
    if width * height > max_pixels {
        return Err(format!(
            "the {format} claims {width}x{height} = {} pixels, over the limit of {max_pixels} (DA3_IMAGE_MAX_PIXELS)",
            width * height
        ));
    }
    Ok(())
}

fn decode_png(bytes: &[u8], size_limits: ImageLimits) -> std::result::Result<RgbImage, String> {
    let reader = || image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| e.to_string());
    // The header alone first: nothing of the image's size is allocated before its check.
    let (width, height) = reader()?.into_dimensions().map_err(|e| e.to_string())?;
    check_size("PNG", width as u64, height as u64, size_limits)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(size_limits.max_side);
    limits.max_image_height = Some(size_limits.max_side);
    limits.max_alloc = Some(size_limits.png_decode_bytes());
    let mut reader = reader()?;
    reader.limits(limits);
    let img = reader.decode().map_err(|e| e.to_string())?.to_rgb8();
    Ok(RgbImage { width: img.width(), height: img.height(), data: img.into_raw() })
}

fn decode_jpeg(bytes: &[u8], limits: ImageLimits) -> std::result::Result<RgbImage, String> {
    // libjpeg's fatal errors (and the truncation found by `on_jpeg_warning`) unwind out of it.
    std::panic::catch_unwind(|| -> std::io::Result<std::result::Result<RgbImage, String>> {
        let decoder = mozjpeg::Decompress::builder().with_err(jpeg_error_manager()).from_mem(bytes)?;
        let (width, height) = decoder.size();
        if let Err(e) = check_size("JPEG", width as u64, height as u64, limits) {
            return Ok(Err(e));
        }
        // Only these convert to RGB in libjpeg (CMYK/YCCK and others fail there): refusing the
        // rest here keeps their buffers (up to 10 components) from being allocated first.
        let components = decoder.components().len();
        if components != 1 && components != 3 {
            return Ok(Err(format!("a JPEG with {components} colour components is not supported (only 1 or 3)")));
        }
        let mut decoder = decoder.rgb()?;
        let data: Vec<u8> = decoder.read_scanlines()?;
        decoder.finish()?;
        Ok(Ok(RgbImage { width: width as u32, height: height as u32, data }))
    })
    .map_err(|panic| format!("invalid JPEG: {}", crate::error::panic_message(&*panic)))?
    .map_err(|e| format!("invalid JPEG: {e}"))?
}

/// libjpeg's error manager with the mozjpeg crate's behaviour (fatal errors unwind, warnings
/// are ignored as PIL ignores them) except for running out of data before the last row, which
/// PIL reports as "image file is truncated".
fn jpeg_error_manager() -> mozjpeg_sys::jpeg_error_mgr {
    // SAFETY: an all-zero jpeg_error_mgr is valid input for jpeg_std_error, which fills it.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(on_jpeg_error);
    err.emit_message = Some(on_jpeg_warning);
    err
}

/// libjpeg's message for the current `msg_code`.
fn jpeg_message(cinfo: &mut mozjpeg_sys::jpeg_common_struct) -> String {
    // JMSG_LENGTH_MAX: format_message writes up to this many bytes.
    let mut buffer = [0u8; 200];
    type FormatMessage = unsafe extern "C-unwind" fn(&mut mozjpeg_sys::jpeg_common_struct, *mut u8);
    // SAFETY: `err` is the manager installed above. The binding declares the buffer as a
    // shared `&[u8; 80]`, but libjpeg writes up to 200 bytes into it: it is called through a
    // pointer type that says so (the same ABI).
    unsafe {
        let Some(format) = (*cinfo.err).format_message else {
            return format!("libjpeg error {}", (*cinfo.err).msg_code);
        };
        let format = std::mem::transmute::<_, FormatMessage>(format);
        format(cinfo, buffer.as_mut_ptr());
    }
    let text = buffer.split(|&c| c == 0).next().unwrap_or_default();
    String::from_utf8_lossy(text).into_owned()
}

extern "C-unwind" fn on_jpeg_error(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    let message = jpeg_message(cinfo);
    // Not a panic: the hook would log it; `decode_jpeg` catches the unwind.
    std::panic::resume_unwind(Box::new(message));
}

extern "C-unwind" fn on_jpeg_warning(cinfo: &mut mozjpeg_sys::jpeg_common_struct, level: std::ffi::c_int) {
    // SAFETY: `err` is the installed manager.
    let code = unsafe { (*cinfo.err).msg_code };
    if level != -1 || code != mozjpeg_sys::JWRN_JPEG_EOF as std::ffi::c_int || cinfo.is_decompressor == 0 {
        return;
    }
    // SAFETY: a decompressor's common struct is the first field of its jpeg_decompress_struct.
    let (row, rows) = unsafe {
        let dinfo = &*(cinfo as *const mozjpeg_sys::jpeg_common_struct).cast::<mozjpeg_sys::jpeg_decompress_struct>();
        (dinfo.output_scanline, dinfo.output_height)
    };
    // Past the last row only the end marker is missing, which PIL accepts too.
    if rows == 0 || row < rows {
        let message = format!("image file is truncated: the JPEG data ends before row {row} of {rows} was decoded");
        std::panic::resume_unwind(Box::new(message));
    }
}
