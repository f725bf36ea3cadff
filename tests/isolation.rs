//! The single-owner rule in the dependency graph: the crates IO threads run
//! (`baton-tls`, `baton-io-threads`) cannot reach the poller because they do
//! not depend on `polling` at all. Only `baton-runtime` does.

use std::process::Command;

fn normal_deps(package: &str) -> String {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--package",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn has_polling(tree: &str) -> bool {
    tree.lines().any(|line| line.starts_with("polling v"))
}

#[test]
fn io_thread_crates_do_not_depend_on_polling() {
    for package in ["baton-tls", "baton-io-threads"] {
        let tree = normal_deps(package);
        assert!(
            tree.starts_with(package),
            "unexpected cargo tree output: {tree}"
        );
        assert!(!has_polling(&tree), "{package} depends on polling:\n{tree}");
    }
}

#[test]
fn the_runtime_is_the_crate_that_owns_polling() {
    // Guards the check above against passing because cargo tree printed
    // nothing useful.
    assert!(has_polling(&normal_deps("baton-runtime")));
}

/// The KV example's state lives on the loop: no lock or atomic guards it
/// (the check-then-act bug class). Comments may mention them.
#[test]
fn the_kv_example_has_no_locks_or_atomics() {
    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kv"),
        &mut files,
    );
    assert!(files.len() >= 8, "found the KV sources: {files:?}");
    for file in files {
        for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let code = line.split("//").next().unwrap();
            for banned in ["Mutex", "RwLock", "Atomic"] {
                assert!(
                    !code.contains(banned),
                    "{}:{}: {banned} in the KV example: {line}",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}
