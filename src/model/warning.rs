//! Conditions a forward met that change how its result should be read.
use std::fmt;

/// Something a result carries that changes how it should be read. Never an error: the
/// outputs are complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// Nested model: the metric branch found only `non_sky_pixels` (10 or fewer) non-sky
    /// pixels in the scene, e.g. all-sky frames, too few for the metric alignment (the
    /// official fails with an assertion there). The result is the any-view branch's:
    /// relative depth and translations, no scale factor, sky pixels not filled; `sky` is set.
    MetricAlignmentSkipped { non_sky_pixels: i64 },
    /// Nested model: no pixel met the alignment's conditions (confident, non-sky, depths
    /// above 1e-3 and metric depth above 1e-2), so the least-squares factor is 0 and the depth
    /// is zero outside the sky, exactly as the official computes it.
    EmptyAlignmentMask,
}

impl Warning {
    /// A stable identifier, e.g. for logs or a C enum.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::MetricAlignmentSkipped { .. } => "metric_alignment_skipped",
            Warning::EmptyAlignmentMask => "empty_alignment_mask",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::MetricAlignmentSkipped { non_sky_pixels } => write!(
                f,
                "metric alignment skipped: only {non_sky_pixels} non-sky pixel(s) in the scene (more than 10 needed); \
                 depth and translations are relative, not metres"
            ),
            Warning::EmptyAlignmentMask => write!(
                f,
                "metric alignment found no usable pixel (confident, non-sky, positive depths): scale factor 0"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_say_what_happened() {
        let w = Warning::MetricAlignmentSkipped { non_sky_pixels: 3 };
        assert_eq!(w.code(), "metric_alignment_skipped");
        assert!(w.to_string().contains("only 3 non-sky"));
        assert_eq!(Warning::EmptyAlignmentMask.code(), "empty_alignment_mask");
    }
}
