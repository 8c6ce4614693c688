//! Tests against the real files in `shared/data` (or `$LAMINA_DATA`); each skips with a
//! message when its files are absent.

mod common;

use datasets::checksum::{sha256_hex, verify_dataset, FileStatus};
use datasets::{class_histogram, open, DataOptions, Dataset, Normalization, Split};

fn check(ds: &dyn Dataset, len: usize, hist: &[usize], first_sha: &str, first_sum: u64, first_labels: &[i64]) {
    assert_eq!(ds.len(), len, "{}", ds.name());
    assert_eq!(class_histogram(ds).unwrap(), hist, "{}", ds.name());
    let s = ds.get(0).unwrap();
    assert_eq!(sha256_hex(&s.pixels), first_sha, "{}", ds.name());
    assert_eq!(s.pixels.iter().map(|&p| p as u64).sum::<u64>(), first_sum);
    let labels: Vec<i64> = (0..first_labels.len()).map(|i| ds.label(i).unwrap()).collect();
    assert_eq!(labels, first_labels, "{}", ds.name());
}

/// Per-channel mean/std of all pixels scaled to [0, 1].
fn stats(ds: &dyn Dataset) -> (Vec<f64>, Vec<f64>) {
    let [c, h, w] = ds.image_shape().unwrap();
    let plane = h * w;
    let (mut s, mut ss) = (vec![0f64; c], vec![0f64; c]);
    for i in 0..ds.len() {
        let px = ds.get(i).unwrap().pixels;
        for ch in 0..c {
            let (mut a, mut b) = (0u64, 0u64);
            for &p in &px[ch * plane..(ch + 1) * plane] {
                a += p as u64;
                b += (p as u64) * (p as u64);
            }
            s[ch] += a as f64;
            ss[ch] += b as f64;
        }
    }
    let n = (ds.len() * plane) as f64;
    let m = ds.pixel_max() as f64;
    let mean: Vec<f64> = s.iter().map(|v| v / n / m).collect();
    let std = ss.iter().zip(&mean).map(|(v, mu)| (v / n / (m * m) - mu * mu).sqrt()).collect();
    (mean, std)
}

fn assert_stats(ds: &dyn Dataset, n: &Normalization) {
    let (mean, std) = stats(ds);
    for c in 0..mean.len() {
        assert!((mean[c] - n.mean[c] as f64).abs() < 5e-4, "{} mean {mean:?}", ds.name());
        assert!((std[c] - n.std[c] as f64).abs() < 5e-4, "{} std {std:?}", ds.name());
    }
}

#[test]
fn mnist() {
    let Some(dir) = common::real_dir("mnist") else {
        return;
    };
    let o = DataOptions::with_dir(&dir);
    let train = open("mnist", Split::Train, &o).unwrap();
    check(
        &*train,
        60_000,
        &[5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
        "23ceaef5eb61f0e70d64ac18fdf0f60df3d5971cf30bbadac7b6ebf07f782d2c",
        27525,
        &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4],
    );
    assert_stats(&*train, &Normalization::mnist());
    let test = open("mnist", Split::Test, &o).unwrap();
    check(
        &*test,
        10_000,
        &[980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
        "8f6a418c9a639f9e14e96feca47a97df2a35a0a68ae2875431c5c80e05536941",
        18454,
        &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9],
    );
    assert_eq!(test.image_shape(), Some([1, 28, 28]));
}

#[test]
fn fashion_mnist() {
    let Some(dir) = common::real_dir("fashion-mnist") else {
        return;
    };
    let o = DataOptions::with_dir(&dir);
    let train = open("fashion-mnist", Split::Train, &o).unwrap();
    check(
        &*train,
        60_000,
        &[6000; 10],
        "5bd44e331a6d6998daf675700cd0c13dcd7af8ab954b7585124124da61459e7b",
        76247,
        &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5],
    );
    assert_stats(&*train, &Normalization::fashion_mnist());
    assert_eq!(train.class_names()[9], "Ankle boot");
    let test = open("fashion-mnist", Split::Test, &o).unwrap();
    check(
        &*test,
        10_000,
        &[1000; 10],
        "ffc7351ed0f8bae542820866086177fa4e0b366b97bf9d998dffdb8dbe138787",
        33456,
        &[9, 2, 1, 1, 6, 1, 4, 6, 5, 7],
    );
    // the embedded test set is the official one
    let emb = open("fashion-mnist-embedded", Split::Test, &o).unwrap();
    for i in [0, 1234, 9999] {
        assert_eq!(emb.get(i).unwrap(), test.get(i).unwrap());
    }
}

#[test]
fn digits() {
    let Some(dir) = common::real_dir("sklearn-digits") else {
        return;
    };
    let all = datasets::digits::DigitsDataset::open(&dir.join("sklearn-digits/digits.csv.gz")).unwrap();
    check(
        &all,
        1797,
        &[178, 182, 177, 183, 181, 182, 181, 179, 174, 180],
        "9bc74a9fdeea9a14cfca731bfe65cb93d1749efb8b892acd2f3bd43bf9443ffa",
        294,
        &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert_stats(&all, &Normalization::digits());
    let o = DataOptions::with_dir(&dir);
    let (tr, te) = (open("digits", Split::Train, &o).unwrap(), open("digits", Split::Test, &o).unwrap());
    assert_eq!((tr.len(), te.len()), (1438, 359));
}

#[test]
fn cifar10() {
    let Some(dir) = common::real_dir("cifar-10") else {
        return;
    };
    let o = DataOptions::with_dir(&dir);
    let train = open("cifar10", Split::Train, &o).unwrap();
    check(
        &*train,
        50_000,
        &[5000; 10],
        "e052de7deb775f78e5e3b718032db5e72434ae6f0d34152c7ad434521631b17c",
        317790,
        &[6, 9, 9, 4, 1, 1, 2, 7, 8, 3],
    );
    assert_eq!(train.class_names()[0], "airplane");
    assert_eq!(train.class_names()[9], "truck");
    assert_stats(&*train, &Normalization::cifar10());
    let test = open("cifar10", Split::Test, &o).unwrap();
    check(
        &*test,
        10_000,
        &[1000; 10],
        "73eefb0106f2b7a2660668be6875682f6aa9c20820633725642b0cc87dc59198",
        332962,
        &[3, 8, 8, 0, 6, 6, 1, 6, 3, 1],
    );
}

#[test]
fn checksums_of_shared_data() {
    let Some(dir) = common::real_dir("cifar-10") else {
        return;
    };
    for ds in ["mnist", "fashion-mnist", "digits", "cifar10"] {
        for r in verify_dataset(&dir, ds).unwrap() {
            assert_eq!(r.status, FileStatus::Ok, "{}", r.full_path.display());
        }
    }
    // CIFAR-100 is not in shared/data: reported missing, not an error
    for r in verify_dataset(&dir, "cifar100").unwrap() {
        if !r.full_path.exists() {
            assert_eq!(r.status, FileStatus::Missing);
        }
    }
}
