//! Daubechies wavelet filter banks with PyWavelets' values.
//!
//! Only the decomposition low-pass filter is stored; the other three filters follow from it as
//! in PyWavelets: `dec_hi[k] = (−1)^(k+1) · dec_lo[L−1−k]`, and the reconstruction filters are
//! the reverses of the decomposition filters.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;

const DB1: [f64; 2] = [std::f64::consts::FRAC_1_SQRT_2, std::f64::consts::FRAC_1_SQRT_2];
const DB2: [f64; 4] = [-0.12940952255126037, 0.2241438680420134, 0.8365163037378079, 0.48296291314453416];
const DB3: [f64; 6] = [
    0.03522629188570953,
    -0.08544127388202666,
    -0.13501102001025458,
    0.45987750211849154,
    0.8068915093110925,
    0.33267055295008263,
];
const DB4: [f64; 8] = [
    -0.010597401785069032,
    0.0328830116668852,
    0.030841381835560764,
    -0.18703481171909309,
    -0.027983769416859854,
    0.6308807679298589,
    0.7148465705529157,
    0.2303778133088965,
];
const DB5: [f64; 10] = [
    0.0033357252854737712,
    -0.012580751999081999,
    -0.006241490212798274,
    0.07757149384004572,
    -0.032244869584638375,
    -0.24229488706638203,
    0.13842814590132074,
    0.7243085284377729,
    0.6038292697971896,
    0.16010239797419293,
];
const DB6: [f64; 12] = [
    -0.0010773010853084796,
    0.004777257510945511,
    0.0005538422011614961,
    -0.03158203931748603,
    0.027522865530305727,
    0.09750160558732304,
    -0.12976686756726194,
    -0.22626469396543983,
    0.31525035170919763,
    0.7511339080210954,
    0.49462389039845306,
    0.11154074335010947,
];
const DB7: [f64; 14] = [
    0.00035371379997452024,
    -0.0018016407040474908,
    0.0004295779729213665,
    0.01255099855609984,
    -0.01657454163066688,
    -0.03802993693501441,
    0.08061260915108308,
    0.07130921926683026,
    -0.22403618499387498,
    -0.14390600392856498,
    0.4697822874051931,
    0.7291320908462351,
    0.3965393194819173,
    0.07785205408500918,
];
const DB8: [f64; 16] = [
    -0.00011747678412476953,
    0.0006754494064505693,
    -0.00039174037337694705,
    -0.004870352993451574,
    0.008746094047405777,
    0.013981027917398282,
    -0.044088253930794755,
    -0.017369301001807547,
    0.12874742662047847,
    0.0004724845739132828,
    -0.2840155429615469,
    -0.015829105256349306,
    0.5853546836542067,
    0.6756307362972898,
    0.31287159091429995,
    0.05441584224310401,
];

/// An orthogonal Daubechies wavelet `dbN` (`N` vanishing moments, filter length `2N`), with
/// PyWavelets' filter values. `db1` is the Haar wavelet.
///
/// ```
/// use autograd::signal::Wavelet;
/// let w: Wavelet = "db3".parse().unwrap();
/// assert_eq!(w, Wavelet::Db3);
/// assert_eq!(w.filter_len(), 6);
/// assert_eq!(Wavelet::from_name("haar").unwrap(), Wavelet::Db1);
/// assert!(Wavelet::from_name("sym4").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wavelet {
    /// Daubechies 1 (Haar), filter length 2.
    Db1,
    /// Daubechies 2, filter length 4.
    Db2,
    /// Daubechies 3, filter length 6 (the Spectral Wavelet Dropout paper's wavelet).
    Db3,
    /// Daubechies 4, filter length 8.
    Db4,
    /// Daubechies 5, filter length 10.
    Db5,
    /// Daubechies 6, filter length 12.
    Db6,
    /// Daubechies 7, filter length 14.
    Db7,
    /// Daubechies 8, filter length 16.
    Db8,
}

impl Wavelet {
    /// Every supported wavelet, shortest filter first.
    pub const ALL: [Wavelet; 8] = [
        Wavelet::Db1,
        Wavelet::Db2,
        Wavelet::Db3,
        Wavelet::Db4,
        Wavelet::Db5,
        Wavelet::Db6,
        Wavelet::Db7,
        Wavelet::Db8,
    ];

    /// Parses PyWavelets' names `"db1"`..`"db8"` and `"haar"` (= `db1`).
    pub fn from_name(name: &str) -> Result<Wavelet> {
        if name == "haar" {
            return Ok(Wavelet::Db1);
        }
        Wavelet::ALL.iter().copied().find(|w| w.name() == name).ok_or_else(|| {
            Error::invalid("wavelet", format!("unknown wavelet name {name:?} (expected \"haar\" or \"db1\"..\"db8\")"))
        })
    }

    /// PyWavelets' name (`"db1"`..`"db8"`).
    pub fn name(self) -> &'static str {
        ["db1", "db2", "db3", "db4", "db5", "db6", "db7", "db8"][self as usize]
    }

    /// The filter length `L` (twice the number of vanishing moments).
    pub fn filter_len(self) -> usize {
        self.dec_lo().len()
    }

    /// The decomposition low-pass filter (PyWavelets' `dec_lo`).
    pub fn dec_lo(self) -> &'static [f64] {
        match self {
            Wavelet::Db1 => &DB1,
            Wavelet::Db2 => &DB2,
            Wavelet::Db3 => &DB3,
            Wavelet::Db4 => &DB4,
            Wavelet::Db5 => &DB5,
            Wavelet::Db6 => &DB6,
            Wavelet::Db7 => &DB7,
            Wavelet::Db8 => &DB8,
        }
    }

    /// The decomposition high-pass filter (PyWavelets' `dec_hi`):
    /// `dec_hi[k] = (−1)^(k+1) · dec_lo[L−1−k]`.
    pub fn dec_hi(self) -> Vec<f64> {
        let lo = self.dec_lo();
        let l = lo.len();
        (0..l).map(|k| if k % 2 == 0 { -lo[l - 1 - k] } else { lo[l - 1 - k] }).collect()
    }

    /// The reconstruction low-pass filter (PyWavelets' `rec_lo`, the reverse of `dec_lo`).
    pub fn rec_lo(self) -> Vec<f64> {
        self.dec_lo().iter().rev().copied().collect()
    }

    /// The reconstruction high-pass filter (PyWavelets' `rec_hi`, the reverse of `dec_hi`).
    pub fn rec_hi(self) -> Vec<f64> {
        self.dec_hi().into_iter().rev().collect()
    }

    /// The number of coefficients per band of one DWT level of a signal of length `len` in
    /// zero-padding mode: `⌊(len + L − 1) / 2⌋` (PyWavelets' `dwt_coeff_len(len, L, 'zero')`).
    pub fn coeff_len(self, len: usize) -> usize {
        (len + self.filter_len() - 1) / 2
    }
}

impl FromStr for Wavelet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Wavelet> {
        Wavelet::from_name(s)
    }
}

impl fmt::Display for Wavelet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orthonormality of every filter bank: `Σ g = √2`, and `Σ_k g[k] g[k + 2s] = δ_s`,
    /// `Σ_k g[k] h[k + 2s] = 0` (shifts by even offsets).
    #[test]
    fn filters_are_orthonormal() {
        for w in Wavelet::ALL {
            let (g, h) = (w.dec_lo(), w.dec_hi());
            let l = g.len();
            assert!((g.iter().sum::<f64>() - 2f64.sqrt()).abs() < 1e-13, "{w}: sum");
            assert!(h.iter().sum::<f64>().abs() < 1e-13, "{w}: high-pass sum");
            for s in 0..l / 2 {
                let gg: f64 = (0..l - 2 * s).map(|k| g[k] * g[k + 2 * s]).sum();
                let hh: f64 = (0..l - 2 * s).map(|k| h[k] * h[k + 2 * s]).sum();
                let gh: f64 = (0..l - 2 * s).map(|k| g[k] * h[k + 2 * s]).sum();
                let hg: f64 = (0..l - 2 * s).map(|k| h[k] * g[k + 2 * s]).sum();
                let want = if s == 0 { 1.0 } else { 0.0 };
                assert!((gg - want).abs() < 1e-12 && (hh - want).abs() < 1e-12, "{w}: shift {s}: {gg} {hh}");
                assert!(gh.abs() < 1e-12 && hg.abs() < 1e-12, "{w}: shift {s}: {gh} {hg}");
            }
        }
    }

    #[test]
    fn db3_matches_the_paper_and_names_round_trip() {
        let hi = Wavelet::Db3.dec_hi();
        let want = [-0.3326705530, 0.8068915093, -0.4598775021, -0.1350110200, 0.0854412739, 0.0352262919];
        for (a, b) in hi.iter().zip(want) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        assert_eq!(Wavelet::Db3.rec_lo()[0], Wavelet::Db3.dec_lo()[5]);
        for w in Wavelet::ALL {
            assert_eq!(w.name().parse::<Wavelet>().unwrap(), w);
            assert_eq!(w.filter_len(), 2 * (w as usize + 1));
        }
        let e = Wavelet::from_name("db99").unwrap_err().to_string();
        assert!(e.contains("wavelet") && e.contains("db99"), "{e}");
    }
}
