//! Property tests: the IDX, CIFAR and digits parsers never panic on arbitrary bytes, and
//! accept what they should.

use std::path::Path;

use datasets::cifar::{validate, CifarLayout};
use datasets::digits::DigitsDataset;
use datasets::idx::{parse_images, parse_labels, IdxArray, IMAGES_MAGIC};
use datasets::read::maybe_gunzip;
use proptest::prelude::*;

fn any_layout() -> impl Strategy<Value = CifarLayout> {
    prop_oneof![Just(CifarLayout::Cifar10), Just(CifarLayout::Cifar100Fine), Just(CifarLayout::Cifar100Coarse)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn idx_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let p = Path::new("fuzz.idx");
        let _ = IdxArray::parse(bytes.clone(), p);
        let _ = parse_images(bytes.clone(), p);
        let _ = parse_labels(bytes.clone(), p, 10);
        let _ = maybe_gunzip(bytes, p);
    }

    #[test]
    fn gzip_garbage_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut b = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        b.extend_from_slice(&tail);
        let _ = maybe_gunzip(b.clone(), Path::new("f.gz"));
        let _ = DigitsDataset::parse(&b, Path::new("f.gz"));
    }

    #[test]
    fn idx_with_plausible_header_never_panics(
        dtype in prop_oneof![Just(8u8), Just(9), Just(0x0B), Just(0x0C), Just(0x0D), Just(0x0E), any::<u8>()],
        dims in proptest::collection::vec(0u32..6, 0..5),
        huge in any::<bool>(),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut b = vec![0, 0, dtype, dims.len() as u8];
        for (i, d) in dims.iter().enumerate() {
            let d = if huge && i == 0 { u32::MAX - d } else { *d };
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(&tail);
        if let Ok(a) = IdxArray::parse(b.clone(), Path::new("f")) {
            let n: usize = a.dims.iter().product();
            prop_assert_eq!(a.data.len(), n * a.dtype.size());
            prop_assert_eq!(a.to_f64().len(), n);
        }
    }

    #[test]
    fn idx_images_round_trip(n in 0u32..4, r in 1u32..5, c in 1u32..5, seed in any::<u8>()) {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, r, c] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        let px: Vec<u8> = (0..n * r * c).map(|i| (i as u8).wrapping_mul(seed)).collect();
        b.extend_from_slice(&px);
        let (n2, r2, c2, px2) = parse_images(b.clone(), Path::new("f")).unwrap();
        prop_assert_eq!((n2, r2, c2), (n as usize, r as usize, c as usize));
        prop_assert_eq!(px2, px);
        // any truncation is rejected
        if b.len() > 16 {
            b.pop();
            prop_assert!(parse_images(b, Path::new("f")).is_err());
        }
    }

    #[test]
    fn cifar_never_panics(
        layout in any_layout(),
        len in 0usize..4 * 3074,
        fill in any::<u8>(),
        expected in proptest::option::of(0usize..4),
    ) {
        let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_add(fill)).collect();
        if let Ok(n) = validate(&bytes, Path::new("f.bin"), layout, expected) {
            prop_assert_eq!(n * layout.record_bytes(), len);
            prop_assert!(n > 0);
        }
    }

    #[test]
    fn cifar_labels_checked(layout in any_layout(), labels in proptest::collection::vec(any::<u8>(), 1..4)) {
        let rec = layout.record_bytes();
        let mut bytes = vec![0u8; labels.len() * rec];
        for (i, l) in labels.iter().enumerate() {
            for k in 0..rec - 3072 {
                bytes[i * rec + k] = *l;
            }
        }
        let ok = labels.iter().all(|&l| match layout {
            CifarLayout::Cifar10 => l < 10,
            _ => l < 20,
        });
        prop_assert_eq!(validate(&bytes, Path::new("f.bin"), layout, None).is_ok(), ok);
    }

    #[test]
    fn digits_never_panics(text in "[0-9,\\n -]{0,300}") {
        let _ = DigitsDataset::parse(text.as_bytes(), Path::new("digits.csv"));
    }
}
