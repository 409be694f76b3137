//! Compiles `csrc/longdouble.c`: the C `long double`, `strtod` and `printf`
//! helpers that `src/num.rs` wraps (Redis does INCRBYFLOAT arithmetic in C
//! `long double`, which Rust cannot express).

fn main() {
    println!("cargo:rerun-if-changed=csrc/longdouble.c");
    println!("cargo:rerun-if-changed=build.rs");
    cc::Build::new()
        .file("csrc/longdouble.c")
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-std=c11")
        .flag_if_supported("-fno-fast-math")
        .compile("kvik_longdouble");
}
