//! HASTE's operation count, as the paper reports it: the reduced convolution's multiply-adds
//! plus the hashing and merging overhead (additions counted one each, like a multiply-add).

use super::hash::Centering;

/// The operations of one patch of a HASTE convolution.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatchCost {
    /// Multiply-adds of the reduced convolution: `C_out · C' · kh · kw · p_h · p_w`.
    pub conv: u64,
    /// Centering the `C_in` channel vectors of `D` values: `2 · C_in · D` (mean and subtraction).
    pub centering: u64,
    /// The projections: `C_in · nnz(R)`, about `C_in · D · L · (1 − s)` additions.
    pub hashing: u64,
    /// Averaging the merged input channels: `C_in · D_patch` (none when nothing merged).
    pub input_merge: u64,
    /// Summing the merged filter slices: `C_out · (C_in − C') · kh · kw`.
    pub filter_merge: u64,
}

impl PatchCost {
    /// The cost of a patch with `c_in` channels merged into `kept` buckets.
    ///
    /// `d` is the hashed vector length (the full tile's input window), `patch_in` the values
    /// per channel of this patch's window, `nonzeros` the projection's non-zero count, `kernel`
    /// `kh · kw` and `outputs` the patch's output pixels `p_h · p_w`.
    ///
    /// ```
    /// use methods::haste::{Centering, PatchCost};
    /// // Nothing merged: the dense convolution plus the hashing overhead.
    /// let c = PatchCost::new(16, 16, 32, 100, 100, 400, 9, 64, Centering::Channels);
    /// assert_eq!(c.conv, 32 * 16 * 9 * 64);
    /// assert_eq!((c.input_merge, c.filter_merge), (0, 0));
    /// assert!(c.total() > c.conv);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        kept: usize,
        c_out: usize,
        d: usize,
        patch_in: usize,
        nonzeros: usize,
        kernel: usize,
        outputs: usize,
        centering: Centering,
    ) -> PatchCost {
        let merged = kept < c_in;
        PatchCost {
            conv: (c_out * kept * kernel * outputs) as u64,
            centering: centering.ops(c_in, d),
            hashing: (c_in * nonzeros) as u64,
            input_merge: if merged { (c_in * patch_in) as u64 } else { 0 },
            filter_merge: (c_out * (c_in - kept) * kernel) as u64,
        }
    }

    /// The overhead: everything but the reduced convolution.
    pub fn overhead(&self) -> u64 {
        self.centering + self.hashing + self.input_merge + self.filter_merge
    }

    /// Convolution plus overhead.
    pub fn total(&self) -> u64 {
        self.conv + self.overhead()
    }

    /// Component-wise sum.
    pub fn add(&mut self, o: &PatchCost) {
        self.conv += o.conv;
        self.centering += o.centering;
        self.hashing += o.hashing;
        self.input_merge += o.input_merge;
        self.filter_merge += o.filter_merge;
    }
}

/// Multiply-adds of the dense convolution HASTE replaces, per image.
pub fn dense_macs(c_in: usize, c_out: usize, kernel: usize, out_h: usize, out_w: usize) -> u64 {
    (c_out * c_in * kernel * out_h * out_w) as u64
}

/// The FLOPs reduction `1 − haste / dense` (negative when the overhead outweighs the savings).
pub fn reduction(haste: u64, dense: u64) -> f64 {
    1.0 - haste as f64 / dense.max(1) as f64
}
