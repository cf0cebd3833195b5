//! Records the git commit the binary is built from, for `gatehouse --version`.
//! GATEHOUSE_GIT_COMMIT wins (a build without the .git directory, such as a
//! container build, passes it in); otherwise `git rev-parse`; otherwise
//! "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GATEHOUSE_GIT_COMMIT");
    // Only files that exist: a missing one would make cargo rerun this (and
    // rebuild the crate) on every build.
    let mut watch = vec![".git/HEAD".to_owned(), ".git/packed-refs".to_owned()];
    if let Ok(head) = std::fs::read_to_string(".git/HEAD") {
        if let Some(r) = head.trim().strip_prefix("ref: ") {
            watch.push(format!(".git/{r}"));
        }
    }
    for f in watch.iter().filter(|f| std::path::Path::new(f).exists()) {
        println!("cargo:rerun-if-changed={f}");
    }
    // The container build passes "unknown" when it was given no commit.
    let commit = std::env::var("GATEHOUSE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty() && c.trim() != "unknown")
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=GATEHOUSE_GIT_COMMIT={commit}");
}
