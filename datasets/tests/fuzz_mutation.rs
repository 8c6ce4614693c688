//! Mutation fuzzing of the dataset readers a user feeds files to: IDX images and labels (plain
//! and gzip), CIFAR-10 and CIFAR-100 binaries, the digits CSV (plain and gzip), and PNG and JPEG
//! images of an image folder. Each input is a valid file of the format with a few random edits
//! ([`common::mutate`]); every reader must return data or an error, never panic, and what it
//! accepts must go through the standard pipelines.
//!
//! The suite runs a short smoke pass; the full run is ignored by default:
//!
//! ```text
//! LAMINA_FUZZ_CASES=1000000 nice -n 19 cargo test --release -p datasets --test fuzz_mutation -- --ignored --nocapture
//! ```

mod common;

use std::io::Write;
use std::path::Path;

use common::mutate::{cases, fuzz};
use datasets::cifar::{CifarFile, CifarLayout};
use datasets::digits::DigitsDataset;
use datasets::idx::{IdxArray, IdxDataset, IdxInfo, IMAGES_MAGIC, LABELS_MAGIC};
use datasets::image_folder::decode_rgb_bytes;
use datasets::read::maybe_gunzip;
use datasets::{Dataset, Normalization, Pipeline, Sample, SampleRng};

#[derive(Clone, Copy, Debug)]
enum Kind {
    IdxImages,
    IdxLabels,
    Cifar10,
    Cifar100,
    Digits,
    Image,
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn encoded(format: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, (x ^ y) as u8 * 9]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn images() -> Vec<u8> {
    idx(IMAGES_MAGIC, &[3, 4, 4], &(0..48).map(|i| i as u8 * 5).collect::<Vec<_>>())
}

fn labels() -> Vec<u8> {
    idx(LABELS_MAGIC, &[3], &[0, 7, 9])
}

fn cifar(layout: CifarLayout, n: usize) -> Vec<u8> {
    let rec = layout.record_bytes();
    (0..n * rec).map(|i| if i % rec < rec - 3072 { (i / rec) as u8 } else { (i * 7) as u8 }).collect()
}

/// The valid files the inputs start from.
fn seeds() -> Vec<(Kind, Vec<u8>)> {
    let digits: String =
        (0..3).map(|r| (0..65).map(|k| ((r + k) % 10).to_string()).collect::<Vec<_>>().join(",") + "\n").collect();
    vec![
        (Kind::IdxImages, images()),
        (Kind::IdxImages, gz(&images())),
        (Kind::IdxLabels, labels()),
        (Kind::IdxLabels, gz(&labels())),
        (Kind::Cifar10, cifar(CifarLayout::Cifar10, 2)),
        (Kind::Cifar100, cifar(CifarLayout::Cifar100Fine, 2)),
        (Kind::Digits, digits.clone().into_bytes()),
        (Kind::Digits, gz(digits.as_bytes())),
        (Kind::Image, encoded(image::ImageFormat::Png, 7, 5)),
        (Kind::Image, encoded(image::ImageFormat::Jpeg, 9, 6)),
    ]
}

fn info() -> IdxInfo {
    IdxInfo {
        name: "fuzz".into(),
        class_names: (0..10).map(|d| d.to_string()).collect(),
        normalization: Normalization::mnist(),
    }
}

/// Every sample of `ds` through a training and an evaluation pipeline.
fn read_all(ds: &dyn Dataset) {
    let train = Pipeline::new().random_crop(4, 1).horizontal_flip(0.5);
    for i in 0..ds.len() {
        let s = ds.get(i).expect("an accepted dataset reads its samples");
        assert!(s.label >= 0 && (s.label as usize) < ds.num_classes());
        let _ = train.apply(&s, ds.pixel_max(), &mut SampleRng::for_sample(0, 0, i as u64));
    }
}

fn check(kind: Kind, bytes: &[u8]) {
    let p = Path::new("fuzz.bin");
    match kind {
        Kind::IdxImages | Kind::IdxLabels => {
            let (img, lab) = match kind {
                Kind::IdxImages => (bytes.to_vec(), labels()),
                _ => (images(), bytes.to_vec()),
            };
            if let Ok(plain) = maybe_gunzip(bytes.to_vec(), p) {
                let _ = IdxArray::parse(plain, p);
            }
            if let Ok(ds) = IdxDataset::from_bytes(img, p, lab, p, info()) {
                read_all(&ds);
            }
        }
        Kind::Cifar10 | Kind::Cifar100 => {
            let layout = if matches!(kind, Kind::Cifar10) { CifarLayout::Cifar10 } else { CifarLayout::Cifar100Fine };
            for expected in [None, Some(2)] {
                if let Ok(f) = CifarFile::from_bytes(bytes.to_vec(), p, layout, expected) {
                    let ds = datasets::cifar::CifarDataset::from_files("fuzz", vec![f], layout);
                    read_all(&ds);
                }
            }
        }
        Kind::Digits => {
            if let Ok(plain) = maybe_gunzip(bytes.to_vec(), p) {
                if let Ok(ds) = DigitsDataset::parse(&plain, p) {
                    read_all(&ds);
                }
            }
        }
        Kind::Image => {
            if let Ok((pixels, shape)) = decode_rgb_bytes(bytes, p) {
                let s = Sample { pixels: pixels.into(), shape, label: 0 };
                let mut rng = SampleRng::new(1);
                for pipe in [Pipeline::new().random_resized_crop(4), Pipeline::new().resize(5).center_crop(4)] {
                    let out = pipe.apply(&s, 255.0, &mut rng).expect("a decoded image goes through the pipelines");
                    assert_eq!((out.c, out.h, out.w), (3, 4, 4));
                }
            }
        }
    }
}

fn run(n: u32) {
    let seeds = seeds();
    let bytes: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let ran = fuzz(n, &bytes, |s, input| check(seeds[s].0, input));
    println!("dataset readers: {ran} mutated inputs, no failure");
}

#[test]
fn mutated_files_never_crash_the_readers_smoke() {
    run(300);
}

#[test]
#[ignore = "long: LAMINA_FUZZ_CASES inputs (default 100000)"]
fn fuzz_dataset_readers() {
    run(cases(100_000));
}
