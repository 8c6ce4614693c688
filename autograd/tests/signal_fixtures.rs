//! `autograd::signal` against PyWavelets and SciPy: reference values generated once by
//! `fixtures/make_signal_fixtures.py` (kept beside them) — `pywt.wavedec(x, w, mode='zero',
//! level)` for db1..db4 on every length 1..=64, `pywt.dwt2` on odd shapes, the filter banks,
//! and `scipy.fft.dct`/`dctn` (orthonormal).

use autograd::signal::{dct, dct2, dwt, dwt2, idct, idct2, idwt, idwt2, Dwt, Dwt2, DwtAlgorithm, Wavelet};
use autograd::{DType, Tensor};

/// One fixture line: header tokens and values.
struct Case {
    head: Vec<String>,
    values: Vec<f64>,
}

impl Case {
    fn num(&self, i: usize) -> usize {
        self.head[i].parse().unwrap()
    }
}

fn load(name: &str) -> Vec<Case> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (head, values) = l.split_once('|').expect("a '|' separator");
            Case {
                head: head.split_whitespace().map(String::from).collect(),
                values: values.split_whitespace().map(|v| v.parse().unwrap()).collect(),
            }
        })
        .collect()
}

/// The fixture script's `signal(n, seed)`, bit for bit.
fn signal(n: usize, seed: usize) -> Vec<f64> {
    (0..n).map(|i| ((i * i * 31 + i * 17 + seed * 7) % 1009) as f64 / 504.5 - 1.0).collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}: element {i}: got {g}, pywt/scipy {w}");
    }
}

const ALGORITHMS: [DwtAlgorithm; 3] = [DwtAlgorithm::Auto, DwtAlgorithm::Matrix, DwtAlgorithm::Conv];

#[test]
fn filters_match_pywavelets() {
    let cases: Vec<Case> = load("wavelets.txt").into_iter().filter(|c| c.head[0] == "filter").collect();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let w = Wavelet::from_name(&c.head[1]).unwrap();
        assert_eq!(w.dec_lo(), &c.values[..], "{w}");
    }
}

#[test]
fn wavedec_matches_pywavelets() {
    let cases: Vec<Case> = load("wavelets.txt").into_iter().filter(|c| c.head[0] == "wavedec").collect();
    assert!(cases.len() > 4 * 64, "{} cases", cases.len());
    for c in &cases {
        let (w, n, level) = (Wavelet::from_name(&c.head[1]).unwrap(), c.num(2), c.num(3));
        let lens: Vec<usize> = (4..c.head.len()).map(|i| c.num(i)).collect();
        let what = format!("{w} N={n} level={level}");
        let x = Tensor::from_vec(signal(n, n), &[n]).unwrap();
        for alg in ALGORITHMS {
            let plan = Dwt::new(w, n, level).unwrap().with_algorithm(alg);
            assert_eq!(plan.band_lens(), &lens[..], "{what}");
            let packed = plan.forward_packed(&x).unwrap();
            assert_close(&packed.to_vec::<f64>().unwrap(), &c.values, 1e-12, &format!("{what} {alg:?}"));
            let back = plan.inverse_packed(&packed).unwrap().to_vec::<f64>().unwrap();
            assert_close(&back, &signal(n, n), 1e-12, &format!("{what} {alg:?} reconstruction"));
        }
        // The band API: pywt order, lengths, and the inverse from separate bands.
        let coeffs = dwt(&x, w, level).unwrap();
        let bands: Vec<f64> = coeffs.to_pywt_order().iter().flat_map(|b| b.to_vec::<f64>().unwrap()).collect();
        assert_eq!(coeffs.details[0].shape(), &[lens[level]], "{what}: details[0] is the finest band");
        assert_close(&bands, &c.values, 1e-12, &what);
        assert_close(&idwt(&coeffs, w, n).unwrap().to_vec::<f64>().unwrap(), &signal(n, n), 1e-12, &what);
    }
}

#[test]
fn coefficient_lengths_of_the_paper() {
    assert_eq!(Dwt::new(Wavelet::Db3, 196, 3).unwrap().band_lens(), &[28, 28, 52, 100]);
    assert_eq!(Dwt::new(Wavelet::Db3, 64, 3).unwrap().band_lens(), &[12, 12, 19, 34]);
}

#[test]
fn dwt2_matches_pywavelets() {
    let cases: Vec<Case> = load("wavelets.txt").into_iter().filter(|c| c.head[0] == "dwt2").collect();
    assert_eq!(cases.len(), 24);
    for c in &cases {
        let w = Wavelet::from_name(&c.head[1]).unwrap();
        let (h, wd, nh, nw) = (c.num(2), c.num(3), c.num(4), c.num(5));
        let what = format!("{w} {h}x{wd}");
        let xv = signal(h * wd, h * 100 + wd);
        let x = Tensor::from_vec(xv.clone(), &[h, wd]).unwrap();
        for alg in ALGORITHMS {
            let plan = Dwt2::new(w, (h, wd)).unwrap().with_algorithm(alg);
            assert_eq!(plan.band_hw(), (nh, nw), "{what}");
            let bands = plan.forward(&x).unwrap();
            let got: Vec<f64> = bands.bands().iter().flat_map(|b| b.to_vec::<f64>().unwrap()).collect();
            assert_close(&got, &c.values, 1e-12, &format!("{what} {alg:?}"));
            let back = plan.inverse(&bands).unwrap().to_vec::<f64>().unwrap();
            assert_close(&back, &xv, 1e-12, &format!("{what} {alg:?} reconstruction"));
        }
        let bands = dwt2(&x, w).unwrap();
        assert_eq!(bands.approx.shape(), &[nh, nw]);
        assert_close(&idwt2(&bands, w, (h, wd)).unwrap().to_vec::<f64>().unwrap(), &xv, 1e-12, &what);
    }
    // The paper's 2-D case: 14x14 maps give 9x9 bands with db3.
    assert_eq!(Dwt2::new(Wavelet::Db3, (14, 14)).unwrap().band_hw(), (9, 9));
}

#[test]
fn dct_matches_scipy() {
    let cases = load("dct.txt");
    assert_eq!(cases.len(), 24);
    for c in &cases {
        if c.head[0] == "dct" {
            let n = c.num(1);
            let x = Tensor::from_vec(signal(n, n), &[n]).unwrap();
            let y = dct(&x).unwrap();
            assert_close(&y.to_vec::<f64>().unwrap(), &c.values, 1e-12, &format!("dct n={n}"));
            assert_close(&idct(&y).unwrap().to_vec::<f64>().unwrap(), &signal(n, n), 1e-12, "idct");
            // f32 within f32 precision.
            let y32 = dct(&x.to_dtype(DType::F32).unwrap()).unwrap().to_f64_vec().unwrap();
            assert_close(&y32, &c.values, 1e-5, &format!("dct f32 n={n}"));
        } else {
            let (h, w) = (c.num(1), c.num(2));
            let xv = signal(h * w, h * 100 + w);
            let x = Tensor::from_vec(xv.clone(), &[h, w]).unwrap();
            let y = dct2(&x).unwrap();
            assert_close(&y.to_vec::<f64>().unwrap(), &c.values, 1e-12, &format!("dct2 {h}x{w}"));
            assert_close(&idct2(&y).unwrap().to_vec::<f64>().unwrap(), &xv, 1e-12, "idct2");
        }
    }
}
