//! PLACEHOLDER until the OpenCV-exact implementation lands (being written now).
pub fn resize_area_rgb8(_src: &[u8], _src_w: usize, _src_h: usize, dst_w: usize, dst_h: usize) -> Vec<u8> {
    vec![0; dst_w * dst_h * 3]
}
pub fn resize_cubic_rgb8(_src: &[u8], _src_w: usize, _src_h: usize, dst_w: usize, dst_h: usize) -> Vec<u8> {
    vec![0; dst_w * dst_h * 3]
}
