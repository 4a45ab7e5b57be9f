//! Tiny ImageNet (200 classes of 64×64 colour images) from an extracted
//! `tiny-imagenet-200/` directory: `train/<wnid>/images/*.JPEG` (500 per class) and
//! `val/images/*.JPEG` with `val/val_annotations.txt` (the test split; the official test
//! set has no labels). Classes are the lines of `wnids.txt` (else the sorted `train/`
//! folders). Pixels are stored C×H×W, raw 0..255; grey JPEGs are expanded to RGB.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{DataError, Dataset, Split};

/// Side of an image.
pub const SIDE: usize = 64;
/// Values per image (3 × 64 × 64).
pub const PIXELS: usize = 3 * SIDE * SIDE;

fn io_err(path: &Path, source: std::io::Error) -> DataError {
    DataError::Io { path: path.to_path_buf(), source }
}

/// The class ids, in label order.
fn wnids(base: &Path) -> Result<Vec<String>, DataError> {
    let list = base.join("wnids.txt");
    if list.is_file() {
        let text = std::fs::read_to_string(&list).map_err(|e| io_err(&list, e))?;
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect());
    }
    let train = base.join("train");
    let mut ids: Vec<String> = std::fs::read_dir(&train)
        .map_err(|e| io_err(&train, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    Ok(ids)
}

/// Decodes one image into `out` (C×H×W).
fn decode(path: &Path, out: &mut [f32]) -> Result<(), DataError> {
    let img = image::open(path)
        .map_err(|e| DataError::Format {
            path: path.to_path_buf(),
            context: "image".into(),
            expected: "a readable JPEG or PNG".into(),
            found: e.to_string(),
        })?
        .to_rgb8();
    if img.width() as usize != SIDE || img.height() as usize != SIDE {
        return Err(DataError::Format {
            path: path.to_path_buf(),
            context: "image size".into(),
            expected: format!("{SIDE}x{SIDE}"),
            found: format!("{}x{}", img.width(), img.height()),
        });
    }
    let plane = SIDE * SIDE;
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = p[c] as f32;
        }
    }
    Ok(())
}

/// The (file, label) pairs of a split.
fn listing(base: &Path, split: Split, ids: &[String]) -> Result<Vec<(PathBuf, u32)>, DataError> {
    let label = |id: &str, at: &Path| -> Result<u32, DataError> {
        ids.iter().position(|w| w == id).map(|i| i as u32).ok_or_else(|| DataError::Format {
            path: at.to_path_buf(),
            context: format!("class `{id}`"),
            expected: "a class listed in wnids.txt".into(),
            found: "an unknown class".into(),
        })
    };
    let mut out = Vec::new();
    match split {
        Split::Train => {
            for id in ids {
                let dir = base.join("train").join(id).join("images");
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|e| io_err(&dir, e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                files.sort();
                let l = label(id, &dir)?;
                out.extend(files.into_iter().map(|f| (f, l)));
            }
        }
        Split::Test => {
            let ann = base.join("val").join("val_annotations.txt");
            let text = std::fs::read_to_string(&ann).map_err(|e| io_err(&ann, e))?;
            for (row, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                let mut cols = line.split('\t');
                let (Some(file), Some(id)) = (cols.next(), cols.next()) else {
                    return Err(DataError::Csv {
                        path: ann.clone(),
                        row: row + 1,
                        expected: "FILE<TAB>WNID...".into(),
                        found: line.into(),
                    });
                };
                out.push((base.join("val").join("images").join(file), label(id, &ann)?));
            }
        }
    }
    Ok(out)
}

/// Reads a split from `base` (the `tiny-imagenet-200/` directory).
///
/// # Errors
/// [`DataError::Missing`] if the directory or its class list is absent (with how to get it);
/// [`DataError::Format`] naming an unreadable or mis-sized image or an unknown class.
pub fn read_dir(name: &str, base: &Path, split: Split) -> Result<Dataset, DataError> {
    if !base.join("train").is_dir() {
        return Err(DataError::Missing {
            dataset: "tiny-imagenet".into(),
            path: base.join("train"),
            hint: super::fetch_hint("tiny-imagenet"),
        });
    }
    let ids = wnids(base)?;
    let files = listing(base, split, &ids)?;
    let mut x = vec![0.0f32; files.len() * PIXELS];
    x.par_chunks_mut(PIXELS).zip(&files).try_for_each(|(out, (f, _))| decode(f, out))?;
    Ok(Dataset {
        name: name.to_string(),
        x,
        labels: files.iter().map(|(_, l)| *l).collect(),
        shape: [3, SIDE, SIDE],
        num_classes: ids.len(),
        range: (0.0, 255.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, shade: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([shade, (x * 4) as u8, (y * 4) as u8])
        });
        img.save(path).unwrap();
    }

    /// A two-class tree written here reads back with labels from wnids.txt, C×H×W layout,
    /// and the validation annotations; a mis-sized image is an error naming the file.
    #[test]
    fn reads_a_small_tree_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("tiny-imagenet-200");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("wnids.txt"), "n02\nn01\n").unwrap();
        // PNG files keep exact values (the reader decodes by content, any extension)
        for (id, shade) in [("n01", 10u8), ("n02", 200u8)] {
            for k in 0..2 {
                write(&base.join(format!("train/{id}/images/{id}_{k}.png")), shade);
            }
        }
        write(&base.join("val/images/val_0.png"), 200);
        std::fs::write(base.join("val/val_annotations.txt"), "val_0.png\tn02\t0\t0\t63\t63\n")
            .unwrap();
        let train = read_dir("t", &base, Split::Train).unwrap();
        assert_eq!(train.labels, vec![0, 0, 1, 1], "n02 is label 0 by wnids.txt");
        assert_eq!(train.num_classes, 2);
        assert_eq!(train.shape, [3, 64, 64]);
        let img = train.example(0);
        assert_eq!(img[0], 200.0, "red plane first");
        assert_eq!(img[4096 + 5], 20.0, "green = 4x at column 5");
        assert_eq!(img[2 * 4096 + 64 * 7], 28.0, "blue = 4y at row 7");
        let val = read_dir("v", &base, Split::Test).unwrap();
        assert_eq!(val.labels, vec![0]);
        image::RgbImage::new(32, 32).save(base.join("train/n01/images/n01_1.png")).unwrap();
        let e = read_dir("t", &base, Split::Train).unwrap_err().to_string();
        assert!(e.contains("n01_1.png") && e.contains("64x64") && e.contains("32x32"), "{e}");
        let e = read_dir("t", &dir.path().join("nowhere"), Split::Train).unwrap_err().to_string();
        assert!(e.contains("tiny-imagenet"), "{e}");
    }
}
