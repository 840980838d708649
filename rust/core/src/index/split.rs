//! Parsing of CoOp split files (`split_zhou_<Name>.json`): an object whose keys `train`, `val`
//! and `test` each hold a list of `[relative_path, label, classname]`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

use super::{IndexError, PathIndex};

/// The split names a split file may hold, in the order they are returned.
pub const SPLIT_NAMES: [&str; 3] = ["train", "val", "test"];

/// A parsed split file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitFile {
    /// `(split name, entries)` for each split present, in `train`, `val`, `test` order.
    pub splits: Vec<(String, PathIndex)>,
    /// Class name of each label `0..C`, where `C` is one more than the largest training label.
    pub classnames: Vec<String>,
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}...", &s[..s.char_indices().nth(77).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Reads and validates a split file.
///
/// `train` is required; `val` and `test` are optional (callers that need them check). Labels
/// must be non-negative integers, contiguous `0..C` over the training list, and each label must
/// carry one class name across all splits.
///
/// # Errors
/// [`IndexError::MissingFile`], [`IndexError::Json`] (with line and column),
/// [`IndexError::Format`] naming the entry, [`IndexError::LabelOutOfRange`],
/// [`IndexError::ClassnameConflict`].
pub fn read_split_json(path: &Path) -> Result<SplitFile, IndexError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(IndexError::MissingFile {
                path: path.to_path_buf(),
                expected: "a split file with \"train\", \"val\" and \"test\" lists".into(),
            })
        }
        Err(e) => return Err(IndexError::io(path, e)),
    };
    let root: Value = serde_json::from_slice(&bytes).map_err(|e| IndexError::Json {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let format_err = |location: String, expected: &str, found: String| IndexError::Format {
        path: path.to_path_buf(),
        location,
        expected: expected.to_string(),
        found,
    };
    let obj = root.as_object().ok_or_else(|| {
        format_err("top level".into(), "an object with keys \"train\", \"val\", \"test\"", describe(&root))
    })?;
    for key in obj.keys() {
        if !SPLIT_NAMES.contains(&key.as_str()) {
            return Err(format_err(
                format!("key {key:?}"),
                "only the keys \"train\", \"val\", \"test\"",
                format!("{key:?}"),
            ));
        }
    }
    if !obj.contains_key("train") {
        return Err(format_err("top level".into(), "a \"train\" list", "no \"train\" key".into()));
    }

    // label -> (class name, where it was first given)
    let mut names: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut splits = Vec::new();
    for split in SPLIT_NAMES {
        let Some(list) = obj.get(split) else { continue };
        let entries = list
            .as_array()
            .ok_or_else(|| format_err(format!("{split:?}"), "a list of [path, label, classname]", describe(list)))?;
        let mut idx = PathIndex::new();
        for (i, entry) in entries.iter().enumerate() {
            let location = format!("entry {i} of {split:?}");
            let (rel, label, name) = match entry.as_array().map(Vec::as_slice) {
                Some([Value::String(p), l, Value::String(n)]) => match l.as_i64() {
                    Some(l) => (p, l, n),
                    None => return Err(format_err(location, "an integer label", describe(l))),
                },
                _ => {
                    return Err(format_err(
                        location,
                        "[path, label, classname] (string, integer, string)",
                        describe(entry),
                    ))
                }
            };
            if label < 0 {
                return Err(IndexError::LabelOutOfRange { path: path.to_path_buf(), location, label, num_classes: 0 });
            }
            // Training labels must cover 0..C contiguously, so C is at most the number of training entries: a
            // larger label is an error found here, before anything is sized by it (a label of 10^18 once sized
            // a vector and aborted the process).
            if split == "train" && label >= entries.len() as i64 {
                return Err(format_err(
                    location,
                    &format!(
                        "a label below {}, the number of training entries (labels are contiguous 0..C)",
                        entries.len()
                    ),
                    format!("label {label}"),
                ));
            }
            match names.get(&label) {
                Some((first, first_location)) if first != name => {
                    return Err(IndexError::ClassnameConflict {
                        path: path.to_path_buf(),
                        location,
                        label,
                        found: name.clone(),
                        first: first.clone(),
                        first_location: first_location.clone(),
                    })
                }
                Some(_) => {}
                None => {
                    names.insert(label, (name.clone(), location));
                }
            }
            idx.push(rel.as_bytes(), label);
        }
        splits.push((split.to_string(), idx));
    }

    let train = &splits[0].1;
    let num_classes = train.labels.iter().max().map_or(0, |m| m + 1);
    let mut seen = vec![false; num_classes as usize];
    for &l in &train.labels {
        seen[l as usize] = true;
    }
    if let Some(gap) = seen.iter().position(|s| !s) {
        return Err(format_err(
            "\"train\"".into(),
            &format!("contiguous labels 0..{num_classes} in the training list"),
            format!("no entry with label {gap}"),
        ));
    }
    for (split, idx) in &splits[1..] {
        if let Some(i) = idx.labels.iter().position(|&l| l >= num_classes) {
            return Err(IndexError::LabelOutOfRange {
                path: path.to_path_buf(),
                location: format!("entry {i} of {split:?}"),
                label: idx.labels[i],
                num_classes,
            });
        }
    }
    let classnames = (0..num_classes).map(|l| names[&l].0.clone()).collect();
    Ok(SplitFile { splits, classnames })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let p = dir.join("split.json");
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn parses_entries_and_classnames() {
        let t = tempfile::tempdir().unwrap();
        let p = write(
            t.path(),
            r#"{"train": [["a/1.jpg", 1, "b_b"], ["a/0.jpg", 0, "a"]], "val": [], "test": [["t.jpg", 1, "b_b"]]}"#,
        );
        let s = read_split_json(&p).unwrap();
        assert_eq!(s.classnames, vec!["a", "b_b"]);
        assert_eq!(s.splits[0].1.labels, vec![1, 0]);
        assert_eq!(s.splits[0].1.path(0), b"a/1.jpg");
        assert_eq!(s.splits[2].0, "test");
        assert_eq!(s.splits[2].1.path(0), b"t.jpg");
    }

    #[test]
    fn errors_name_file_and_entry() {
        let t = tempfile::tempdir().unwrap();
        let p = write(t.path(), "{\"train\": [\n[\"a\", 0, \"x\"],\n]}");
        let e = read_split_json(&p).unwrap_err().to_string();
        assert!(e.contains("split.json: line 3"), "{e}");
        let p = write(t.path(), r#"{"train": [["a", 0, "x"]], "test": [["b", 3, "y"]]}"#);
        let e = read_split_json(&p).unwrap_err().to_string();
        assert!(e.contains("entry 0 of \"test\": label 3 is out of range; expected 0..1"), "{e}");
        let p = write(t.path(), r#"{"train": [["a", 0, "x"], ["b", "0", "x"]]}"#);
        let e = read_split_json(&p).unwrap_err().to_string();
        assert!(e.contains("entry 1 of \"train\": expected an integer label"), "{e}");
        let p = write(t.path(), r#"{"train": [["a", 0, "x"], ["b", 0, "y"]]}"#);
        let e = read_split_json(&p).unwrap_err().to_string();
        assert!(e.contains("differs from \"x\" given at entry 0 of \"train\""), "{e}");
        let p = write(t.path(), r#"{"train": [["a", 2, "x"], ["b", 2, "x"], ["c", 0, "y"]]}"#);
        let e = read_split_json(&p).unwrap_err().to_string();
        assert!(e.contains("no entry with label 1"), "{e}");
        let p = write(t.path(), r#"{"train": [["a", 0, "x"], ["b", 1000000000000000000, "y"]]}"#);
        let e = read_split_json(&p).unwrap_err().to_string();
        assert!(e.contains("entry 1 of \"train\": expected a label below 2"), "{e}");
        assert!(e.contains("found label 1000000000000000000"), "{e}");
        let e = read_split_json(&t.path().join("nope.json")).unwrap_err().to_string();
        assert!(e.contains("nope.json: file not found"), "{e}");
    }
}
