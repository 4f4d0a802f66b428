//! Turning INPUT paths into an ordered list of sources.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Damage, InputSource};

/// The result of [`discover`].
#[derive(Debug, Default)]
pub struct Discovery {
    /// The inputs to read, in order: the paths in the order given; under a directory, its files
    /// sorted by path.
    pub sources: Vec<InputSource>,
    /// Files not read, with the reason (digest and Insights files, files under a directory whose
    /// name is not that of a log file, symbolic links to directories).
    pub skipped: Vec<(PathBuf, &'static str)>,
    /// Paths that could not be read (missing, unreadable directory).
    pub errors: Vec<Damage>,
}

const SKIP_DIGEST: &str = "CloudTrail digest file";
const SKIP_INSIGHT: &str = "CloudTrail Insights file";
const SKIP_EXTENSION: &str = "not a .json, .jsonl, .ndjson file or a .gz of one";
const SKIP_DIR_LINK: &str = "symbolic link to a directory (not followed)";

/// Files and directories (recursive, sorted for determinism), `-` = stdin.
///
/// In directories, takes `*.json`, `*.jsonl`, `*.ndjson` and the same with `.gz` appended
/// (case-insensitive). CloudTrail digest files (a path component `CloudTrail-Digest`, or a file
/// name containing `_CloudTrail-Digest_`) and Insights files (`CloudTrail-Insight`,
/// `_CloudTrail-Insight_`) are skipped and listed in `skipped`, also when named explicitly (a shell
/// glob over an S3 tree names them). Any other file named explicitly is read whatever its
/// extension. A path that cannot be read is reported in `errors`. A path given twice is read
/// once; symbolic links to files are followed, to directories not.
pub fn discover(paths: &[PathBuf]) -> Discovery {
    let mut d = Discovery::default();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for path in paths {
        if path.as_os_str() == "-" {
            if !d.sources.contains(&InputSource::Stdin) {
                d.sources.push(InputSource::Stdin);
            }
            continue;
        }
        match fs::metadata(path) {
            Err(e) => d.errors.push(Damage::whole_file(
                path.display().to_string(),
                format!("cannot read input: {e}"),
            )),
            Ok(m) if m.is_dir() => walk(path, &mut d, &mut seen),
            Ok(_) => {
                if let Some(reason) = cloudtrail_skip(path) {
                    d.skipped.push((path.clone(), reason));
                } else if seen.insert(path.clone()) {
                    d.sources.push(InputSource::File(path.clone()));
                }
            }
        }
    }
    d
}

/// Walks a directory tree without recursion; adds its files sorted by path.
fn walk(root: &Path, d: &mut Discovery, seen: &mut HashSet<PathBuf>) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut skipped: Vec<(PathBuf, &'static str)> = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                d.errors.push(Damage::whole_file(
                    dir.display().to_string(),
                    format!("cannot read directory: {e}"),
                ));
                continue;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    d.errors.push(Damage::whole_file(
                        dir.display().to_string(),
                        format!("cannot read directory: {e}"),
                    ));
                    continue;
                }
            };
            let path = entry.path();
            let file_type = match entry.file_type() {
                Ok(t) => t,
                Err(e) => {
                    d.errors.push(Damage::whole_file(
                        path.display().to_string(),
                        format!("cannot read input: {e}"),
                    ));
                    continue;
                }
            };
            let is_file = if file_type.is_dir() {
                dirs.push(path);
                continue;
            } else if file_type.is_symlink() {
                match fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        skipped.push((path, SKIP_DIR_LINK));
                        continue;
                    }
                    Ok(m) => m.is_file(),
                    Err(e) => {
                        d.errors.push(Damage::whole_file(
                            path.display().to_string(),
                            format!("cannot read input: {e}"),
                        ));
                        continue;
                    }
                }
            } else {
                file_type.is_file()
            };
            if !is_file {
                continue; // sockets, fifos, devices
            }
            if let Some(reason) = cloudtrail_skip(&path) {
                skipped.push((path, reason));
            } else if is_log_file_name(&path) {
                files.push(path);
            } else {
                skipped.push((path, SKIP_EXTENSION));
            }
        }
    }
    files.sort();
    skipped.sort();
    for file in files {
        if seen.insert(file.clone()) {
            d.sources.push(InputSource::File(file));
        }
    }
    d.skipped.extend(skipped);
}

/// Digest and Insights files are not event logs.
fn cloudtrail_skip(path: &Path) -> Option<&'static str> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let component = |c: &str| path.components().any(|p| p.as_os_str() == c);
    if component("CloudTrail-Digest") || name.contains("_CloudTrail-Digest_") {
        Some(SKIP_DIGEST)
    } else if component("CloudTrail-Insight") || name.contains("_CloudTrail-Insight_") {
        Some(SKIP_INSIGHT)
    } else {
        None
    }
}

fn is_log_file_name(path: &Path) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    let name = name.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".json", ".jsonl", ".ndjson"]
        .iter()
        .any(|ext| name.len() > ext.len() && name.ends_with(ext))
}
