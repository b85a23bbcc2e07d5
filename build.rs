//! Build script: link the `artifact` binary as a non-PIE executable on Linux. The binary links
//! polars (about 200k relative relocations as a PIE), and applying them at every start cost
//! ~4.5 ms, most of a no-op run's budget; a fixed-address executable starts in ~3 ms.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && arch == "x86_64" {
        println!("cargo:rustc-link-arg-bin=artifact=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
