//! Caller-owned pixel buffers as the core sees them.
use crate::error::{Error, Result};

/// Byte order of an interleaved 8-bit pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    Rgb8,
    Rgba8,
    Bgr8,
    Bgra8,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => 4,
        }
    }
}

/// A caller's 8-bit image in CUDA device (or managed) memory, at a device address: what a
/// renderer or a GPU video decoder hands over (`da3_infer_cuda`). Checked against the
/// allocation that holds it before anything is read (`engine`).
#[derive(Clone, Copy, Debug)]
pub struct CudaImage {
    /// Device address of the first byte of the top row.
    pub address: u64,
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the next (>= width * bytes_per_pixel).
    pub pitch: usize,
    pub format: PixelFormat,
}

impl CudaImage {
    /// Bytes the image spans from `address`: `pitch * (height - 1) + width * bpp`, or why the
    /// description is invalid (zero size, short pitch, overflow).
    pub fn span(&self) -> Result<u64> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::InvalidArgument(format!("image size must be non-zero, got {}x{}", self.width, self.height)));
        }
        let row = self.width as usize * self.format.bytes_per_pixel();
        if self.pitch < row {
            return Err(Error::InvalidArgument(format!("pitch {} is smaller than width * bytes per pixel = {row}", self.pitch)));
        }
        let span = (self.pitch as u64)
            .checked_mul(self.height as u64 - 1)
            .and_then(|v| v.checked_add(row as u64))
            .filter(|&v| v <= i64::MAX as u64)
            .ok_or_else(|| Error::InvalidArgument("image dimensions overflow".into()))?;
        self.address
            .checked_add(span)
            .ok_or_else(|| Error::InvalidArgument(format!("address {:#x} + {span} bytes overflows", self.address)))?;
        Ok(span)
    }
}

/// A borrowed, possibly padded (row stride) 8-bit image.
#[derive(Clone, Copy, Debug)]
pub struct ImageView<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    /// Bytes from the start of one row to the next (>= width * bytes_per_pixel).
    pub stride: usize,
    pub format: PixelFormat,
}

impl<'a> ImageView<'a> {
    /// Checks sizes and stride against the buffer length.
    pub fn new(data: &'a [u8], width: u32, height: u32, stride: usize, format: PixelFormat) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidArgument(format!("image size must be non-zero, got {width}x{height}")));
        }
        let row = width as usize * format.bytes_per_pixel();
        if stride < row {
            return Err(Error::InvalidArgument(format!(
                "row stride {stride} is smaller than width * bytes per pixel = {row}"
            )));
        }
        let needed = stride
            .checked_mul(height as usize - 1)
            .and_then(|v| v.checked_add(row))
            .ok_or_else(|| Error::InvalidArgument("image dimensions overflow".into()))?;
        if data.len() < needed {
            return Err(Error::InvalidArgument(format!(
                "pixel buffer holds {} bytes, {width}x{height} with stride {stride} needs {needed}",
                data.len()
            )));
        }
        Ok(ImageView { data, width, height, stride, format })
    }

    /// Packed RGB8 copy (what the official `PIL.Image.convert("RGB")` yields);
    /// `Error::OutOfMemory` when the host cannot hold it (instead of aborting the process).
    pub fn to_rgb8(&self) -> Result<Vec<u8>> {
        let (w, h) = (self.width as usize, self.height as usize);
        let bpp = self.format.bytes_per_pixel();
        let len = w * h * 3;
        let mut out = Vec::new();
        out.try_reserve_exact(len)
            .map_err(|_| Error::OutOfMemory(format!("preprocessing: {len} bytes for an RGB8 copy of a {w}x{h} view")))?;
        out.resize(len, 0u8);
        if out.is_empty() {
            return Ok(out);
        }
        for (y, dst) in out.chunks_exact_mut(w * 3).enumerate() {
            let row = &self.data[y * self.stride..][..w * bpp];
            match self.format {
                PixelFormat::Rgb8 => dst.copy_from_slice(row),
                PixelFormat::Rgba8 => dst.chunks_exact_mut(3).zip(row.chunks_exact(4)).for_each(|(d, p)| d.copy_from_slice(&p[..3])),
                PixelFormat::Bgr8 => {
                    dst.chunks_exact_mut(3).zip(row.chunks_exact(3)).for_each(|(d, p)| d.copy_from_slice(&[p[2], p[1], p[0]]))
                }
                PixelFormat::Bgra8 => {
                    dst.chunks_exact_mut(3).zip(row.chunks_exact(4)).for_each(|(d, p)| d.copy_from_slice(&[p[2], p[1], p[0]]))
                }
            }
        }
        Ok(out)
    }
}

/// An owned packed RGB8 image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}
