//! `cargo xtask <check>`: every check atomkit runs, as one command each.
//!
//! CI calls `cargo xtask ci`; a developer runs the same commands locally. Each step
//! installs what it needs (nightly components, cargo-fuzz) when it is missing.
//! `docs/TESTING.md` lists the steps, what they cost and how to run the long versions.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  fmt       rustfmt check of the workspace and the fuzz crate
  clippy    clippy on every target, std and model-checker builds, and rustdoc;
            warnings denied
  test      unit, integration, doc tests and examples (std build); benches compile
  loom      loom models (loom-tests/tests/loom_*.rs), release, per-model bounds
            --long: LOOM_MAX_PREEMPTIONS=4 (hours; see docs/TESTING.md)
  shuttle   shuttle tests (loom-tests/tests/shuttle_*.rs), random + PCT schedulers
            --long: ATOMKIT_SHUTTLE_ITERS=200000
  miri      integration and unit tests under Miri, strict provenance, scaled down
            --seeds N: also explore N schedules per test (-Zmiri-many-seeds)
  tsan      integration tests under ThreadSanitizer (nightly, -Zbuild-std)
  fuzz      a short run of every fuzz target (--secs N per target, default 20)
  bench     head-to-head against the peers, round-robin, table of ratios
            --full: full-size workloads, 11 rounds, then criterion's full runs
            --out FILE: also write the table to FILE
  ci        fmt, clippy, test, loom, shuttle, miri, tsan, fuzz; summary at the end
            deletes each step's build directory after it when the disk has less
            than 12 GiB free; --lean: always, --keep: never
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest = &args[1..];
    let root = workspace_root();
    env::set_current_dir(&root).expect("cd to the workspace root");
    let ok = match cmd.as_str() {
        "fmt" => fmt(),
        "clippy" => clippy(),
        "test" => test(),
        "loom" => loom(flag(rest, "--long")),
        "shuttle" => shuttle(flag(rest, "--long")),
        "miri" => miri(option(rest, "--seeds")),
        "tsan" => tsan(),
        "fuzz" => fuzz(option(rest, "--secs").unwrap_or(20)),
        "bench" => bench(rest),
        "ci" => ci(rest),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            true
        }
        other => {
            eprintln!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn flag(args: &[String], name: &str) -> bool {
    args.iter().any(|a| a == name)
}

fn option(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    let v = args
        .get(i + 1)
        .unwrap_or_else(|| panic!("{name} needs a value"));
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}: `{v}` is not a number")),
    )
}

fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// A command with the inherited environment minus RUSTFLAGS, so each step sets its own.
fn cargo(toolchain: Option<&str>) -> Command {
    let mut c = Command::new("cargo");
    if let Some(tc) = toolchain {
        c.arg(format!("+{tc}"));
        // A stable cargo in the environment must not shadow the nightly one.
        c.env_remove("CARGO");
        c.env_remove("RUSTC");
    }
    c.env_remove("RUSTFLAGS");
    c.env_remove("CARGO_ENCODED_RUSTFLAGS");
    c.env_remove("RUSTDOCFLAGS");
    c
}

fn run(mut c: Command) -> bool {
    eprintln!("xtask: $ {}", show(&c));
    match c.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask: could not start {}: {e}", show(&c));
            false
        }
    }
}

fn show(c: &Command) -> String {
    let mut s = String::new();
    for (k, v) in c.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!(
                "{}={:?} ",
                k.to_string_lossy(),
                v.to_string_lossy()
            ));
        }
    }
    s.push_str(&c.get_program().to_string_lossy());
    for a in c.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The nightly toolchain used for Miri, TSan and fuzzing. `ATOMKIT_NIGHTLY` picks
/// another (e.g. `nightly-2026-05-19`); the default is the machine's `nightly`.
fn nightly() -> String {
    env::var("ATOMKIT_NIGHTLY").unwrap_or_else(|_| "nightly".to_string())
}

fn ensure_nightly_components(components: &[&str]) -> bool {
    let tc = nightly();
    let installed = Command::new("rustup")
        .args(["component", "list", "--installed", "--toolchain", &tc])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| !installed.lines().any(|l| l.starts_with(c)))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let mut c = Command::new("rustup");
    c.args(["component", "add"])
        .args(&missing)
        .args(["--toolchain", &tc]);
    if run(c) {
        return true;
    }
    // The toolchain itself may be missing on a fresh machine.
    let mut c = Command::new("rustup");
    c.args([
        "toolchain",
        "install",
        &tc,
        "--profile",
        "minimal",
        "--component",
    ])
    .arg(missing.join(","));
    run(c)
}

fn ensure_stable_components() -> bool {
    let mut ok = true;
    for (probe, comp) in [("fmt", "rustfmt"), ("clippy", "clippy")] {
        if !succeeds("cargo", &[probe, "--version"]) {
            let mut c = Command::new("rustup");
            c.args(["component", "add", comp]);
            ok &= run(c);
        }
    }
    ok
}

/// Test files in `dir` whose names start with `prefix`, as cargo test target names.
fn targets(dir: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let stem = name.strip_suffix(".rs")?.to_string();
                    stem.starts_with(prefix).then_some(stem)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn fmt() -> bool {
    if !ensure_stable_components() {
        return false;
    }
    let mut c = cargo(None);
    c.args(["fmt", "--all", "--", "--check"]);
    let mut ok = run(c);
    if Path::new("fuzz/Cargo.toml").exists() {
        let mut c = cargo(None);
        c.args(["fmt", "--manifest-path", "fuzz/Cargo.toml", "--", "--check"]);
        ok &= run(c);
    }
    ok
}

fn clippy() -> bool {
    if !ensure_stable_components() {
        return false;
    }
    let mut c = cargo(None);
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut ok = run(c);
    for (cfg, dir) in [
        (
            "--cfg atomkit_loom --cfg crossbeam_loom --cfg atomkit_unstable",
            "target/clippy-loom",
        ),
        (
            "--cfg atomkit_shuttle --cfg atomkit_unstable",
            "target/clippy-shuttle",
        ),
    ] {
        // The library and the models only: the peers among the dev-dependencies are not
        // built for model checkers.
        for (package, targets) in [("atomkit", "--lib"), ("atomkit-loom-tests", "--tests")] {
            let mut c = cargo(None);
            c.env("RUSTFLAGS", cfg)
                .env("CARGO_TARGET_DIR", dir)
                .args(["clippy", "--release", "-p", package, targets])
                .args(["--", "-D", "warnings"]);
            ok &= run(c);
        }
    }
    // The API docs: broken or private intra-doc links are errors too.
    let mut c = cargo(None);
    c.env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--no-deps", "-p", "atomkit"]);
    ok &= run(c);
    ok
}

fn test() -> bool {
    let mut c = cargo(None);
    c.env("RUSTFLAGS", "-D warnings").args([
        "test",
        "--workspace",
        "--lib",
        "--bins",
        "--tests",
        "--examples",
    ]);
    let mut ok = run(c);
    let mut c = cargo(None);
    c.env("RUSTFLAGS", "-D warnings")
        .args(["test", "--doc", "-p", "atomkit"]);
    ok &= run(c);
    // The test-only `atomkit_stall` build: the queue's stall hooks (park one thread at
    // each internal step of push and pop while others must finish), and a semaphore
    // that counts at most 3 waiters and lets an uncounted waiter sleep 1 s, so that a
    // test reaches the waiters that do not fit in the count.
    // The same build also turns on `atomkit_unstable`, for the unstable word-key
    // counter map's doc tests and API docs (its unit tests run in every `cfg(test)`
    // build).
    const STALL: &str = "--cfg atomkit_stall --cfg atomkit_unstable -D warnings";
    for (file, filter) in [
        ("queue", "stall_every_step"),
        ("semaphore", "uncounted_waiters"),
    ] {
        let mut c = cargo(None);
        c.env("RUSTFLAGS", STALL)
            .env("CARGO_TARGET_DIR", "target/stall")
            .args(["test", "-p", "atomkit", "--test", file, filter]);
        ok &= run(c);
    }
    let mut c = cargo(None);
    c.env("RUSTFLAGS", STALL)
        .env("RUSTDOCFLAGS", "--cfg atomkit_unstable -D warnings")
        .env("CARGO_TARGET_DIR", "target/stall")
        .args(["test", "-p", "atomkit", "--doc", "counter_map::word"]);
    ok &= run(c);
    // Its API docs: broken or private intra-doc links are errors, as in `clippy`.
    let mut c = cargo(None);
    c.env("RUSTFLAGS", STALL)
        .env("RUSTDOCFLAGS", "--cfg atomkit_unstable -D warnings")
        .env("CARGO_TARGET_DIR", "target/stall")
        .args(["doc", "--no-deps", "-p", "atomkit"]);
    ok &= run(c);
    // Benches must keep compiling; running them is `cargo xtask bench`.
    let mut c = cargo(None);
    c.env("RUSTFLAGS", "-D warnings")
        .args(["build", "--benches", "-p", "atomkit"]);
    ok &= run(c);
    ok
}

fn loom(long: bool) -> bool {
    let models = targets("loom-tests/tests", "loom_");
    let nextest = succeeds("cargo", &["nextest", "--version"]);
    let mut c = cargo(None);
    c.env(
        "RUSTFLAGS",
        "--cfg atomkit_loom --cfg crossbeam_loom --cfg atomkit_unstable",
    )
    .env("CARGO_TARGET_DIR", "target/loom");
    if long {
        c.env("LOOM_MAX_PREEMPTIONS", "4");
    }
    if nextest {
        // One process per model: a loom deadlock aborts only its own model.
        c.args([
            "nextest",
            "run",
            "--release",
            "-p",
            "atomkit-loom-tests",
            "--no-fail-fast",
        ]);
    } else {
        c.args([
            "test",
            "--release",
            "-p",
            "atomkit-loom-tests",
            "--no-fail-fast",
        ]);
    }
    for m in &models {
        c.args(["--test", m]);
    }
    run(c)
}

fn shuttle(long: bool) -> bool {
    let mut c = cargo(None);
    c.env("RUSTFLAGS", "--cfg atomkit_shuttle --cfg atomkit_unstable")
        .env("CARGO_TARGET_DIR", "target/shuttle")
        .env("SHUTTLE_SILENCE_WARNINGS", "1");
    if long {
        c.env("ATOMKIT_SHUTTLE_ITERS", "200000");
    }
    c.args([
        "test",
        "--release",
        "-p",
        "atomkit-loom-tests",
        "--no-fail-fast",
    ]);
    for t in targets("loom-tests/tests", "shuttle_") {
        c.args(["--test", &t]);
    }
    run(c)
}

fn miri(seeds: Option<u64>) -> bool {
    if !ensure_nightly_components(&["miri", "rust-src"]) {
        return false;
    }
    let tc = nightly();
    let mut setup = cargo(Some(&tc));
    setup.args(["miri", "setup"]);
    if !run(setup) {
        return false;
    }
    let seeds = seeds.map_or(String::new(), |n| format!(" -Zmiri-many-seeds=0..{n}"));
    // Test files of primitives that reclaim memory through crossbeam-epoch 0.9, which
    // stores pointers as integers (no strict provenance), retags its list entries in a
    // way Stacked Borrows rejects (Tree Borrows accepts it), and keeps deferred garbage
    // in its global collector at exit (reported as leaks). The library's unit tests
    // include those primitives' too.
    const EPOCH_USERS: &[&str] = &["counter_map", "deque"];
    let tests = targets("tests", "");
    let mut strict = cargo(Some(&tc));
    strict
        .env("MIRIFLAGS", format!("-Zmiri-strict-provenance{seeds}"))
        .env("CARGO_TARGET_DIR", "target/miri")
        .args(["miri", "test", "-p", "atomkit"]);
    for t in tests.iter().filter(|t| !EPOCH_USERS.contains(&t.as_str())) {
        strict.args(["--test", t]);
    }
    let mut ok = run(strict);
    let mut epoch = cargo(Some(&tc));
    epoch
        .env(
            "MIRIFLAGS",
            format!("-Zmiri-permissive-provenance -Zmiri-tree-borrows -Zmiri-ignore-leaks{seeds}"),
        )
        .env("CARGO_TARGET_DIR", "target/miri")
        .args(["miri", "test", "-p", "atomkit", "--lib"]);
    for t in tests.iter().filter(|t| EPOCH_USERS.contains(&t.as_str())) {
        epoch.args(["--test", t]);
    }
    ok &= run(epoch);
    ok
}

fn host_target() -> String {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host")
}

fn tsan() -> bool {
    if !ensure_nightly_components(&["rust-src"]) {
        return false;
    }
    let tc = nightly();
    let mut c = cargo(Some(&tc));
    c.env("RUSTFLAGS", "-Zsanitizer=thread --cfg atomkit_tsan")
        .env("RUSTDOCFLAGS", "-Zsanitizer=thread --cfg atomkit_tsan")
        .env("CARGO_TARGET_DIR", "target/tsan")
        // Our own tests only; TSan reports in std's test harness threads are not ours.
        .env("TSAN_OPTIONS", "halt_on_error=1 second_deadlock_stack=1")
        .args([
            "test",
            "-Zbuild-std",
            "--target",
            &host_target(),
            "-p",
            "atomkit",
            "--lib",
            "--tests",
        ]);
    run(c)
}

/// Fuzz targets run without LeakSanitizer. The pool's `shutdown_now` and `Drop` leave
/// worker threads to exit on their own (by design: they never block), so a worker of
/// the last input may still be tearing down its thread-locals when the fuzzer checks
/// for leaks at exit. The target counts every job's drop itself instead.
const NO_LEAK_CHECK: &[&str] = &["pool"];

fn fuzz(secs: u64) -> bool {
    let fuzz_targets = targets("fuzz/fuzz_targets", "");
    if fuzz_targets.is_empty() {
        eprintln!("xtask: no fuzz targets");
        return true;
    }
    if !succeeds("cargo", &["fuzz", "--version"]) {
        let mut c = cargo(None);
        c.args(["install", "cargo-fuzz", "--locked"]);
        if !run(c) {
            return false;
        }
    }
    let tc = nightly();
    let mut ok = true;
    for t in fuzz_targets {
        let mut c = cargo(Some(&tc));
        // Every target with the same flags (cargo-fuzz adds its own to these), so that
        // they share one build; the unstable cfg is for `word_counter_map`.
        c.current_dir("fuzz")
            .env("RUSTFLAGS", "--cfg atomkit_unstable")
            .args(["fuzz", "run", &t, "--", &format!("-max_total_time={secs}")]);
        if NO_LEAK_CHECK.contains(&t.as_str()) {
            // libFuzzer's per-input check, and LeakSanitizer's own check at exit.
            c.arg("-detect_leaks=0")
                .env("ASAN_OPTIONS", "detect_leaks=0");
        }
        ok &= run(c);
    }
    ok
}

fn bench(rest: &[String]) -> bool {
    let full = flag(rest, "--full");
    let mut c = cargo(None);
    c.args(["bench", "-p", "atomkit", "--bench", "h2h", "--"]);
    c.args(rest);
    let mut ok = run(c);
    if full {
        // Criterion's own runs of every bench file, for deep dives.
        let mut c = cargo(None);
        c.args(["bench", "-p", "atomkit"]);
        for b in targets("benches", "") {
            c.args(["--bench", &b]);
        }
        ok &= run(c);
    }
    ok
}

/// Below this much free disk, `ci` deletes each step's own build directory once the
/// step is done: a full run builds six toolchain configurations, about 4.5 GB in all,
/// and no later step reads an earlier step's directory.
const LEAN_BELOW_GIB: u64 = 12;

fn ci(rest: &[String]) -> bool {
    type Step = (&'static str, fn() -> bool, &'static [&'static str]);
    let steps: [Step; 8] = [
        ("fmt", fmt, &[]),
        (
            "clippy",
            clippy,
            &["target/clippy-loom", "target/clippy-shuttle", "target/doc"],
        ),
        // `target/debug` itself holds the running xtask; its incremental caches do not.
        ("test", test, &["target/stall", "target/debug/incremental"]),
        ("loom", || loom(false), &["target/loom"]),
        ("shuttle", || shuttle(false), &["target/shuttle"]),
        ("miri", || miri(None), &["target/miri"]),
        ("tsan", tsan, &["target/tsan"]),
        ("fuzz", || fuzz(20), &["fuzz/target"]),
    ];
    let lean = flag(rest, "--lean");
    let keep = flag(rest, "--keep");
    let start = Instant::now();
    let mut results = Vec::new();
    for (name, step, scratch) in steps {
        eprintln!("\nxtask ci: ==== {name} ==== ({})", free_disk_text());
        let t = Instant::now();
        let ok = step();
        results.push((name, ok, t.elapsed()));
        let low = free_disk_gib().is_some_and(|g| g < LEAN_BELOW_GIB);
        if !keep && (lean || low) {
            for dir in scratch {
                if Path::new(dir).exists() {
                    eprintln!("xtask ci: removing {dir} (done with it)");
                    if let Err(e) = std::fs::remove_dir_all(dir) {
                        eprintln!("xtask ci: could not remove {dir}: {e}");
                    }
                }
            }
        }
    }
    let passed = results.iter().filter(|r| r.1).count();
    let failed = results.len() - passed;
    println!("\nxtask ci summary");
    for (name, ok, d) in &results {
        println!(
            "  {:<8} {:<4} {:>7.1} s",
            name,
            if *ok { "ok" } else { "FAIL" },
            d.as_secs_f64()
        );
    }
    println!("  total         {:>7.1} s", start.elapsed().as_secs_f64());
    println!(
        "ci: {passed} passed, {failed} failed ({})",
        free_disk_text()
    );
    failed == 0
}

/// Free space on the workspace's file system, in whole GiB, from POSIX `df -Pk`.
fn free_disk_gib() -> Option<u64> {
    let out = Command::new("df").args(["-Pk", "."]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib / (1024 * 1024))
}

fn free_disk_text() -> String {
    match free_disk_gib() {
        Some(g) => format!("{g} GiB free"),
        None => "free disk unknown".to_string(),
    }
}
