//! Readers on small files the tests write in the exact binary layouts, and corrupt inputs:
//! each gives its specific error variant, whose message names the file.

mod common;

use std::io::Write;
use std::path::Path;

use datasets::idx::{IMAGES_MAGIC, LABELS_MAGIC};
use datasets::{class_histogram, open, DataOptions, Dataset, DatasetError, Loader, LoaderConfig, Split, DATASET_NAMES};

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

/// Writes an MNIST-layout directory with `n` images; returns the data dir.
fn write_mnist(tag: &str, images: Vec<u8>, labels: Vec<u8>) -> common::TempDir {
    let dir = common::temp_dir(tag);
    std::fs::create_dir_all(dir.join("mnist")).unwrap();
    std::fs::write(dir.join("mnist/t10k-images-idx3-ubyte.gz"), gz(&images)).unwrap();
    std::fs::write(dir.join("mnist/t10k-labels-idx1-ubyte.gz"), gz(&labels)).unwrap();
    dir
}

fn open_err(name: &str, dir: &Path) -> DatasetError {
    match open(name, Split::Test, &DataOptions::with_dir(dir)) {
        Ok(_) => panic!("{name} in {} opened but should fail", dir.display()),
        Err(e) => e,
    }
}

fn names_file(e: &DatasetError, file: &str) {
    let msg = e.to_string();
    assert!(msg.contains(file), "message {msg:?} does not name {file}");
}

#[test]
fn idx_round_trip_plain_and_gzip() {
    let px: Vec<u8> = (0..3 * 28 * 28).map(|v| (v % 251) as u8).collect();
    let dir = write_mnist("idx-ok", idx(IMAGES_MAGIC, &[3, 28, 28], &px), idx(LABELS_MAGIC, &[3], &[1, 2, 9]));
    let ds = open("mnist", Split::Test, &DataOptions::with_dir(&dir)).unwrap();
    assert_eq!(ds.len(), 3);
    assert_eq!(&ds.get(2).unwrap().pixels[..], &px[2 * 784..]);
    // uncompressed files in the directory itself are found too
    let flat = common::temp_dir("idx-flat");
    std::fs::write(flat.join("t10k-images-idx3-ubyte"), idx(IMAGES_MAGIC, &[3, 28, 28], &px)).unwrap();
    std::fs::write(flat.join("t10k-labels-idx1-ubyte"), idx(LABELS_MAGIC, &[3], &[1, 2, 9])).unwrap();
    let ds = open("mnist", Split::Test, &DataOptions::with_dir(&flat)).unwrap();
    assert_eq!(ds.label(1).unwrap(), 2);
}

#[test]
fn idx_corrupt_inputs() {
    let px = vec![0u8; 2 * 784];
    let labels = idx(LABELS_MAGIC, &[2], &[0, 1]);
    // truncated
    let dir = write_mnist("idx-trunc", idx(IMAGES_MAGIC, &[2, 28, 28], &px[..1000]), labels.clone());
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::Truncated { at: 1016, needed: 1584, .. }), "{e}");
    names_file(&e, "t10k-images-idx3-ubyte.gz");
    assert!(e.to_string().contains("truncated at byte 1016"));
    // wrong magic
    let dir = write_mnist("idx-magic", idx(0x0000_0903, &[2, 28, 28], &px), labels.clone());
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::BadMagic { found: 0x903, .. }), "{e}");
    names_file(&e, "t10k-images-idx3-ubyte.gz");
    // header count larger than the data
    let dir = write_mnist("idx-count", idx(IMAGES_MAGIC, &[3, 28, 28], &px), labels.clone());
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::Truncated { .. }), "{e}");
    // header count smaller than the data
    let dir = write_mnist("idx-count2", idx(IMAGES_MAGIC, &[1, 28, 28], &px), labels.clone());
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::CountMismatch { .. }), "{e}");
    names_file(&e, "t10k-images-idx3-ubyte.gz");
    // image and label counts disagree
    let dir = write_mnist("idx-pair", idx(IMAGES_MAGIC, &[2, 28, 28], &px), idx(LABELS_MAGIC, &[1], &[0]));
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::CountMismatch { .. }), "{e}");
    names_file(&e, "t10k-labels-idx1-ubyte.gz");
    // label out of range
    let dir = write_mnist("idx-label", idx(IMAGES_MAGIC, &[2, 28, 28], &px), idx(LABELS_MAGIC, &[2], &[0, 10]));
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::LabelOutOfRange { index: 1, label: 10, .. }), "{e}");
    names_file(&e, "t10k-labels-idx1-ubyte.gz");
    // corrupt gzip stream
    let dir = write_mnist("idx-gz", idx(IMAGES_MAGIC, &[2, 28, 28], &px), labels);
    let f = dir.join("mnist/t10k-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let e = open_err("mnist", &dir);
    assert!(matches!(e, DatasetError::Decode { .. }), "{e}");
    names_file(&e, "t10k-images-idx3-ubyte.gz");
}

/// A CIFAR record: label byte(s), then planes whose pixels encode (record, channel).
fn cifar_record(labels: &[u8], seed: u8) -> Vec<u8> {
    let mut r = labels.to_vec();
    for c in 0..3u8 {
        r.extend((0..1024).map(|i| seed.wrapping_mul(7).wrapping_add(c * 50).wrapping_add((i % 32) as u8)));
    }
    r
}

#[test]
fn cifar10_layout_written_by_the_test() {
    let dir = common::temp_dir("c10");
    let sub = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&sub).unwrap();
    for k in 1..=5u8 {
        let recs: Vec<u8> =
            (0..10_000u32).flat_map(|i| cifar_record(&[((i + k as u32) % 10) as u8], (i % 200) as u8)).collect();
        std::fs::write(sub.join(format!("data_batch_{k}.bin")), recs).unwrap();
    }
    let test: Vec<u8> = (0..10_000u32).flat_map(|i| cifar_record(&[(i % 10) as u8], 3)).collect();
    std::fs::write(sub.join("test_batch.bin"), &test).unwrap();
    let o = DataOptions::with_dir(&dir);
    let tr = open("cifar10", Split::Train, &o).unwrap();
    assert_eq!(tr.len(), 50_000);
    assert_eq!(class_histogram(&*tr).unwrap(), vec![5000; 10]);
    // record 3 of data_batch_2 is index 10003
    let s = tr.get(10_003).unwrap();
    assert_eq!(s.label, 5); // (3 + 2) % 10
    assert_eq!(s.shape, [3, 32, 32]);
    assert_eq!(&s.pixels[..], &cifar_record(&[0], 3)[1..]);
    assert_eq!(s.pixels[1024], 3 * 7 + 50); // G plane starts at 1024
                                            // a loader over it yields CHW f32 batches
    let loader =
        Loader::new(tr.clone(), tr.standard_pipeline(true), LoaderConfig { batch_size: 500, ..Default::default() })
            .unwrap();
    let b = loader.epoch(0).next().unwrap().unwrap();
    assert_eq!((b.n, b.c, b.h, b.w, b.images.len()), (500, 3, 32, 32, 500 * 3072));

    // truncated test batch, then a label out of range
    let f = sub.join("test_batch.bin");
    std::fs::write(&f, &test[..test.len() - 100]).unwrap();
    let e = open_err("cifar10", &dir);
    assert!(matches!(e, DatasetError::Truncated { needed: 30_730_000, .. }), "{e}");
    names_file(&e, "test_batch.bin");
    let mut bad = test.clone();
    bad[5 * 3073] = 10;
    std::fs::write(&f, &bad).unwrap();
    let e = open_err("cifar10", &dir);
    assert!(matches!(e, DatasetError::LabelOutOfRange { index: 5, label: 10, .. }), "{e}");
    names_file(&e, "test_batch.bin");
    let mut long = test;
    long.extend(cifar_record(&[0], 0));
    std::fs::write(&f, &long).unwrap();
    assert!(matches!(open_err("cifar10", &dir), DatasetError::CountMismatch { .. }));
}

#[test]
fn cifar100_layout_written_by_the_test() {
    let dir = common::temp_dir("c100");
    let sub = dir.join("cifar-100-binary");
    std::fs::create_dir_all(&sub).unwrap();
    let recs: Vec<u8> =
        (0..10_000u32).flat_map(|i| cifar_record(&[(i % 20) as u8, (i % 100) as u8], (i % 256) as u8)).collect();
    std::fs::write(sub.join("test.bin"), &recs).unwrap();
    let ds = open("cifar100", Split::Test, &DataOptions::with_dir(&dir)).unwrap();
    assert_eq!((ds.len(), ds.num_classes()), (10_000, 100));
    assert_eq!(ds.get(257).unwrap().label, 57);
    assert_eq!(&ds.get(257).unwrap().pixels[..], &cifar_record(&[], 1)[..]);
    assert_eq!(ds.class_names()[99], "worm");
    assert_eq!(class_histogram(&*ds).unwrap(), vec![100; 100]);
    // coarse labels via the reader API
    let coarse = datasets::cifar::CifarDataset::open(
        "cifar100-coarse",
        &[sub.join("test.bin")],
        datasets::cifar::CifarLayout::Cifar100Coarse,
        Some(10_000),
    )
    .unwrap();
    assert_eq!((coarse.num_classes(), coarse.get(257).unwrap().label), (20, 17));
    // fine label out of range
    let mut bad = recs;
    bad[7 * 3074 + 1] = 100;
    std::fs::write(sub.join("test.bin"), &bad).unwrap();
    let e = open_err("cifar100", &dir);
    assert!(matches!(e, DatasetError::LabelOutOfRange { index: 7, label: 100, num_classes: 100, .. }), "{e}");
    names_file(&e, "test.bin");
}

fn write_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

fn write_jpeg(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    img.save_with_format(path, image::ImageFormat::Jpeg).unwrap();
}

#[test]
fn image_folder() {
    let dir = common::temp_dir("folder");
    let val = dir.join("val");
    for c in ["zebra", "Ant", "cat"] {
        std::fs::create_dir_all(val.join(c)).unwrap();
    }
    write_png(&val.join("zebra/b.png"), 40, 30, [255, 0, 0]);
    write_jpeg(&val.join("zebra/a.JPG"), 16, 16, [0, 0, 255]);
    std::fs::create_dir_all(val.join("cat/nested")).unwrap();
    write_png(&val.join("cat/nested/x.png"), 8, 12, [0, 255, 0]);
    write_png(&val.join("Ant/1.jpeg.png"), 5, 5, [9, 9, 9]);
    std::fs::write(val.join("cat/notes.txt"), "not an image, skipped").unwrap();
    let ds = open("imagefolder", Split::Test, &DataOptions::with_dir(&dir)).unwrap();
    // sorted as Python sorts strings: upper case first
    assert_eq!(ds.class_names(), ["Ant", "cat", "zebra"]);
    assert_eq!(ds.len(), 4);
    assert_eq!((0..4).map(|i| ds.label(i).unwrap()).collect::<Vec<_>>(), vec![0, 1, 2, 2]);
    assert_eq!(ds.image_shape(), None);
    let s = ds.get(3).unwrap(); // zebra/b.png
    assert_eq!(s.shape, [3, 30, 40]);
    assert!(s.pixels[..1200].iter().all(|&p| p == 255) && s.pixels[1200..].iter().all(|&p| p == 0));
    let j = ds.get(2).unwrap(); // zebra/a.JPG, blue
    assert_eq!(j.shape, [3, 16, 16]);
    assert!(j.pixels[512] > 240 && j.pixels[0] < 15);
    // standard pipelines give fixed-size batches from varying sizes
    let folder = datasets::image_folder::ImageFolder::open(&val).unwrap().with_image_size(24);
    let folder: std::sync::Arc<dyn Dataset> = std::sync::Arc::new(folder);
    for train in [true, false] {
        let l = Loader::new(
            folder.clone(),
            folder.standard_pipeline(train),
            LoaderConfig { batch_size: 4, ..Default::default() },
        )
        .unwrap();
        let b = l.epoch(0).next().unwrap().unwrap();
        assert_eq!((b.n, b.c, b.h, b.w), (4, 3, 24, 24));
    }

    // a file with an image extension that is not an image: decode error naming it
    std::fs::write(val.join("cat/broken.png"), "plain text").unwrap();
    let ds = open("imagefolder", Split::Test, &DataOptions::with_dir(&dir)).unwrap();
    let i = (0..ds.len()).find(|&i| ds.get(i).is_err()).unwrap();
    let e = ds.get(i).unwrap_err();
    assert!(matches!(e, DatasetError::Decode { .. }), "{e}");
    names_file(&e, "broken.png");
    // the loader reports it instead of panicking
    let l = Loader::new(
        ds.clone(),
        Pipeline::new().resize(8).center_crop(8),
        LoaderConfig { batch_size: 8, ..Default::default() },
    )
    .unwrap();
    assert!(l.epoch(0).any(|b| b.is_err()));

    // an empty class folder
    std::fs::create_dir_all(val.join("empty")).unwrap();
    std::fs::write(val.join("empty/readme.txt"), "no images").unwrap();
    let e = open_err("imagefolder", &dir);
    assert!(matches!(e, DatasetError::EmptyClass { .. }), "{e}");
    names_file(&e, "empty");
}

use datasets::Pipeline;

/// Image folders of photos of different sizes give one fixed input shape (what the trainer
/// needs to build a model), sizes as options; a 0-byte file is refused when the folder is
/// opened, naming it, or skipped with the unreadable ones and listed.
#[test]
fn image_folder_sizes_and_unreadable_files() {
    use datasets::image_folder::ImageFolderOptions;
    let dir = common::temp_dir("folder-sizes");
    let train = dir.join("train");
    for (c, sizes) in [("a", [(50, 30), (23, 41)]), ("b", [(64, 64), (31, 17)])] {
        std::fs::create_dir_all(train.join(c)).unwrap();
        for (k, (w, h)) in sizes.into_iter().enumerate() {
            write_png(&train.join(format!("{c}/{k}.png")), w, h, [200, 10, 10]);
            write_jpeg(&train.join(format!("{c}/{k}.jpg")), h, w, [10, 10, 200]);
        }
    }
    let opts = |size, resize, skip| DataOptions {
        data_dir: Some(dir.to_path_buf()),
        image_folder: ImageFolderOptions { image_size: size, resize, skip_unreadable: skip },
    };
    let ds = open("imagefolder", Split::Train, &opts(20, Some(24), false)).unwrap();
    assert_eq!((ds.len(), ds.image_shape()), (8, None));
    for train in [true, false] {
        assert_eq!(ds.output_shape(train), Some([3, 20, 20]));
        let l =
            Loader::new(ds.clone(), ds.standard_pipeline(train), LoaderConfig { batch_size: 8, ..Default::default() })
                .unwrap();
        let b = l.epoch(0).next().unwrap().unwrap();
        assert_eq!((b.n, b.c, b.h, b.w), (8, 3, 20, 20));
    }
    let steps = format!("{:?}", ds.standard_pipeline(false).steps());
    assert!(steps.contains("Resize { size: 24 }") && steps.contains("height: 20"), "{steps}");
    let e = open("imagefolder", Split::Train, &opts(20, Some(10), false)).err().unwrap().to_string();
    assert!(e.contains("resize 10") && e.contains("image size 20"), "{e}");

    std::fs::write(train.join("b/empty.jpg"), b"").unwrap();
    std::fs::write(train.join("a/text.png"), "not an image").unwrap();
    let e = open("imagefolder", Split::Train, &opts(20, None, false)).err().unwrap();
    assert!(matches!(e, DatasetError::Decode { .. }), "{e}");
    names_file(&e, "empty.jpg");
    let ds = open("imagefolder", Split::Train, &opts(20, None, true)).unwrap();
    assert_eq!(ds.len(), 8, "both unreadable files skipped");
    let folder = datasets::image_folder::ImageFolder::open_with(
        &train,
        &ImageFolderOptions { image_size: 20, resize: None, skip_unreadable: true },
    )
    .unwrap();
    let skipped: Vec<String> = folder.skipped().iter().map(|(p, why)| format!("{} {why}", p.display())).collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped[0].contains("text.png") && skipped[1].contains("empty.jpg") && skipped[1].contains("0 bytes"));
}

#[test]
fn registry_errors() {
    let Err(e) = open("imagenet-22k", Split::Train, &DataOptions::default()) else { panic!("unknown name opened") };
    assert!(matches!(e, DatasetError::UnknownDataset { .. }));
    for n in DATASET_NAMES {
        assert!(e.to_string().contains(n), "{e}");
    }
    let dir = common::temp_dir("missing");
    for (name, file) in [
        ("mnist", "mnist/t10k-images-idx3-ubyte.gz"),
        ("fashion-mnist", "fashion-mnist/t10k-labels-idx1-ubyte.gz"),
        ("cifar10", "cifar-10/test_batch.bin"),
        ("cifar100", "cifar-100/test.bin"),
        ("digits", "sklearn-digits/digits.csv.gz"),
        ("imagefolder", "val/<class>/<image>"),
    ] {
        let e = open_err(name, &dir);
        assert!(matches!(e, DatasetError::MissingData { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&dir.display().to_string()) && msg.contains(file), "{msg}");
    }
    if std::env::var_os("LAMINA_DATA").is_none() {
        let Err(e) = open("cifar100", Split::Train, &DataOptions::default()) else {
            panic!("opened without a data directory")
        };
        assert!(e.to_string().contains("LAMINA_DATA") && e.to_string().contains("cifar-100/train.bin"), "{e}");
    }
    let e = open_err("mnist", &dir.join("does-not-exist"));
    assert!(e.to_string().contains("does-not-exist"), "{e}");
}

#[cfg(unix)]
#[test]
fn image_folder_symlink_loop_is_an_error() {
    let dir = common::temp_dir("symlink");
    std::fs::create_dir_all(dir.join("a/sub")).unwrap();
    write_png(&dir.join("a/x.png"), 2, 2, [1, 2, 3]);
    std::os::unix::fs::symlink(dir.join("a"), dir.join("a/sub/loop")).unwrap();
    let e = datasets::image_folder::ImageFolder::open(&dir).unwrap_err();
    assert!(matches!(e, DatasetError::Io { .. }), "{e}");
    assert!(e.to_string().contains("symlink loop"), "{e}");
}
