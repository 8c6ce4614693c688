//! Image folders in the ImageNet layout: `root/<class>/<image>` (images may sit in nested
//! folders below their class folder). Classes are the sorted names of `root`'s
//! sub-directories and images are the files with a `.jpg`, `.jpeg` or `.png` extension
//! (any case), in sorted path order, as torchvision's `ImageFolder` lists them. Images are
//! decoded (JPEG, PNG) to RGB when read, which the loader does on its worker threads, and the
//! standard pipelines bring every image to one square size whatever its own size
//! ([`ImageFolderOptions`]): torchvision's random-resized crop for training, and a resize of
//! the shorter side then a center crop for evaluation.
//!
//! A 0-byte file is an error naming it when the folder is opened; a file that is not a
//! readable image is an error naming it when it is decoded, unless
//! [`ImageFolderOptions::skip_unreadable`] is set: then every file's header is checked when
//! the folder is opened (in parallel) and the unreadable ones are left out and listed
//! ([`Dataset::skipped`]).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::dataset::{check_index, Dataset, Sample};
use crate::error::{DatasetError, Result};
use crate::transforms::{hwc_to_chw, Normalization, Pipeline};

/// Registry name.
pub const NAME: &str = "imagefolder";
/// File extensions (lowercase) treated as images.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// True when `path` has an image extension.
pub fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// The largest image size the standard pipelines produce (a typo beyond it would only end in
/// a failed allocation per image).
pub const MAX_IMAGE_SIZE: usize = 4096;

/// How an image folder is sized and how unreadable files are treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolderOptions {
    /// Side of the square images both standard pipelines produce (224).
    pub image_size: usize,
    /// The shorter side evaluation resizes to before its center crop (`None`:
    /// `image_size * 256 / 224`, torchvision's 256 for 224).
    pub resize: Option<usize>,
    /// Leave out (and list) files that are empty or not readable images instead of failing.
    pub skip_unreadable: bool,
}

impl Default for ImageFolderOptions {
    fn default() -> Self {
        ImageFolderOptions { image_size: 224, resize: None, skip_unreadable: false }
    }
}

impl ImageFolderOptions {
    /// The shorter side evaluation resizes to.
    pub fn eval_resize(&self) -> usize {
        self.resize.unwrap_or(self.image_size * 256 / 224)
    }

    /// Errors unless the sizes make sense: an image size of 1 to [`MAX_IMAGE_SIZE`] pixels and
    /// a resize no smaller than it and at most twice the largest size.
    pub fn check(&self) -> Result<()> {
        if self.image_size == 0 || self.image_size > MAX_IMAGE_SIZE {
            return Err(DatasetError::invalid(format!(
                "image size {} must be 1 to {MAX_IMAGE_SIZE} pixels",
                self.image_size
            )));
        }
        if self.eval_resize() > 2 * MAX_IMAGE_SIZE {
            return Err(DatasetError::invalid(format!(
                "resize {} must be at most {} pixels",
                self.eval_resize(),
                2 * MAX_IMAGE_SIZE
            )));
        }
        if self.eval_resize() < self.image_size {
            return Err(DatasetError::invalid(format!(
                "resize {} is smaller than the image size {}: the center crop would pad the image",
                self.eval_resize(),
                self.image_size
            )));
        }
        Ok(())
    }
}

/// An image folder: the list of image files and their classes; images are decoded on `get`.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
    options: ImageFolderOptions,
    skipped: Vec<(PathBuf, String)>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = std::fs::read_dir(dir)
        .map_err(|e| DatasetError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|err| DatasetError::io(dir, err)))
        .collect::<Result<Vec<_>>>()?;
    v.sort();
    Ok(v)
}

/// Deepest folder nesting followed below a class folder (guards against symlink loops).
const MAX_DEPTH: usize = 32;

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(DatasetError::io(
            dir,
            std::io::Error::other(format!("folders nested deeper than {MAX_DEPTH} levels (a symlink loop?)")),
        ));
    }
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            collect_images(&p, out, depth + 1)?;
        } else if is_image_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Why `path` is not a readable image, from its size and header alone (`None`: it looks
/// like one).
fn unreadable(path: &Path) -> Option<String> {
    let probe = || -> std::result::Result<(), String> {
        let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
        if len == 0 {
            return Err("empty file (0 bytes)".into());
        }
        let reader = image::ImageReader::open(path).map_err(|e| e.to_string())?;
        let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
        reader.into_dimensions().map(|_| ()).map_err(|e| format!("not a readable JPEG/PNG image: {e}"))
    };
    probe().err()
}

/// The 0-byte files among `files`, as an error naming the first.
fn refuse_empty_files(files: &[PathBuf]) -> Result<()> {
    for f in files {
        let len = std::fs::metadata(f).map_err(|e| DatasetError::io(f, e))?.len();
        if len == 0 {
            return Err(DatasetError::Decode {
                path: f.clone(),
                message: "empty file (0 bytes); remove it, or skip unreadable files".into(),
            });
        }
    }
    Ok(())
}

impl ImageFolder {
    /// Lists `root`'s classes and images with the default options. Errors when `root` has no
    /// class folder ([`DatasetError::MissingData`]), a class folder holds no image
    /// ([`DatasetError::EmptyClass`]) or an image file is empty ([`DatasetError::Decode`]).
    pub fn open(root: &Path) -> Result<Self> {
        Self::open_with(root, &ImageFolderOptions::default())
    }

    /// [`ImageFolder::open`] with `options`: with `skip_unreadable`, every file's header is
    /// read and the files that are empty or not images are left out (see
    /// [`ImageFolder::skipped`]) instead of failing later.
    pub fn open_with(root: &Path, options: &ImageFolderOptions) -> Result<Self> {
        options.check()?;
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if class_dirs.is_empty() {
            return Err(DatasetError::MissingData {
                dir: root.to_path_buf(),
                expected: vec!["<class>/<image>.jpg|.jpeg|.png".into()],
            });
        }
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        for (c, d) in class_dirs.iter().enumerate() {
            let mut files = Vec::new();
            collect_images(d, &mut files, 0)?;
            if options.skip_unreadable {
                let verdicts: Vec<Option<String>> = files.par_iter().map(|f| unreadable(f)).collect();
                let mut kept = Vec::with_capacity(files.len());
                for (f, why) in files.into_iter().zip(verdicts) {
                    match why {
                        Some(why) => skipped.push((f, why)),
                        None => kept.push(f),
                    }
                }
                files = kept;
            } else {
                refuse_empty_files(&files)?;
            }
            if files.is_empty() {
                return Err(DatasetError::EmptyClass { path: d.clone() });
            }
            classes.push(d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            samples.extend(files.into_iter().map(|f| (f, c)));
        }
        Ok(ImageFolder { root: root.to_path_buf(), classes, samples, options: options.clone(), skipped })
    }

    /// Sets the side of the square images the standard pipelines produce (default 224;
    /// evaluation resizes the shorter side to `size * 256 / 224` first, unless a resize is set).
    pub fn with_image_size(mut self, size: usize) -> Self {
        self.options.image_size = size;
        self
    }

    /// The options the folder was opened with.
    pub fn options(&self) -> &ImageFolderOptions {
        &self.options
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every image file and its class id, in dataset order.
    pub fn samples(&self) -> &[(PathBuf, usize)] {
        &self.samples
    }
}

/// Decodes a JPEG or PNG file to RGB, returning CHW pixels and `[3, h, w]`.
pub fn decode_rgb(path: &Path) -> Result<(Vec<u8>, [usize; 3])> {
    let bytes = std::fs::read(path).map_err(|e| DatasetError::io(path, e))?;
    decode_rgb_bytes(&bytes, path)
}

/// Decodes the bytes of a JPEG or PNG file to RGB (CHW pixels and `[3, h, w]`); `path` only
/// names the source in errors.
pub fn decode_rgb_bytes(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, [usize; 3])> {
    let img = image::load_from_memory(bytes).map_err(|e| DatasetError::Decode {
        path: path.to_path_buf(),
        message: format!("not a readable JPEG/PNG image: {e}"),
    })?;
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    Ok((hwc_to_chw(rgb.as_raw(), h, w, 3), [3, h, w]))
}

impl Dataset for ImageFolder {
    fn name(&self) -> &str {
        NAME
    }
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn num_classes(&self) -> usize {
        self.classes.len()
    }
    fn class_names(&self) -> &[String] {
        &self.classes
    }
    fn image_shape(&self) -> Option<[usize; 3]> {
        None
    }
    /// Both pipelines end in a square of the image size.
    fn output_shape(&self, _train: bool) -> Option<[usize; 3]> {
        Some([3, self.options.image_size, self.options.image_size])
    }
    fn normalization(&self) -> Normalization {
        Normalization::imagenet()
    }
    fn get(&self, index: usize) -> Result<Sample<'_>> {
        check_index(self, index)?;
        let (path, class) = &self.samples[index];
        let (pixels, shape) = decode_rgb(path)?;
        Ok(Sample { pixels: Cow::Owned(pixels), shape, label: *class as i64 })
    }
    fn label(&self, index: usize) -> Result<i64> {
        check_index(self, index)?;
        Ok(self.samples[index].1 as i64)
    }
    /// Train: random-resized crop + flip + normalize; test: resize the shorter side (to
    /// `size * 256 / 224` unless set), center crop, normalize (torchvision's ImageNet recipe).
    fn standard_pipeline(&self, train: bool) -> Pipeline {
        let s = self.options.image_size;
        let p = if train {
            Pipeline::new().random_resized_crop(s).horizontal_flip(0.5)
        } else {
            Pipeline::new().resize(self.options.eval_resize()).center_crop(s)
        };
        p.normalize(self.normalization())
    }
    /// The files left out as unreadable (with `skip_unreadable`), and why.
    fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }
}
