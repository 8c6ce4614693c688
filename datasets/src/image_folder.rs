//! Image folders in the ImageNet layout: `root/<class>/<image>` (images may sit in nested
//! folders below their class folder). Classes are the sorted names of `root`'s
//! sub-directories and images are the files with a `.jpg`, `.jpeg` or `.png` extension
//! (any case), in sorted path order, as torchvision's `ImageFolder` lists them. Images are
//! decoded (JPEG, PNG) when read, to RGB.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

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

/// An image folder: the list of image files and their classes; images are decoded on `get`.
#[derive(Clone, Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, usize)>,
    image_size: usize,
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

impl ImageFolder {
    /// Lists `root`'s classes and images. Errors when `root` has no class folder
    /// ([`DatasetError::MissingData`]) or a class folder holds no image
    /// ([`DatasetError::EmptyClass`]).
    pub fn open(root: &Path) -> Result<Self> {
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if class_dirs.is_empty() {
            return Err(DatasetError::MissingData {
                dir: root.to_path_buf(),
                expected: vec!["<class>/<image>.jpg|.jpeg|.png".into()],
            });
        }
        let mut classes = Vec::new();
        let mut samples = Vec::new();
        for (c, d) in class_dirs.iter().enumerate() {
            let mut files = Vec::new();
            collect_images(d, &mut files, 0)?;
            if files.is_empty() {
                return Err(DatasetError::EmptyClass { path: d.clone() });
            }
            classes.push(d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            samples.extend(files.into_iter().map(|f| (f, c)));
        }
        Ok(ImageFolder { root: root.to_path_buf(), classes, samples, image_size: 224 })
    }

    /// Sets the side of the square images the standard pipelines produce (default 224;
    /// evaluation resizes the shorter side to `size * 256 / 224` first).
    pub fn with_image_size(mut self, size: usize) -> Self {
        self.image_size = size;
        self
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
    let img = image::load_from_memory(&bytes).map_err(|e| DatasetError::Decode {
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
    /// Train: random-resized crop + flip + normalize; test: resize the shorter side to
    /// `size * 256 / 224`, center crop, normalize (torchvision's ImageNet recipe).
    fn standard_pipeline(&self, train: bool) -> Pipeline {
        let s = self.image_size;
        let p = if train {
            Pipeline::new().random_resized_crop(s).horizontal_flip(0.5)
        } else {
            Pipeline::new().resize(s * 256 / 224).center_crop(s)
        };
        p.normalize(self.normalization())
    }
}
