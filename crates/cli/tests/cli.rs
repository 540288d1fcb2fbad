//! End-to-end tests of the `galaxy` binary: exit codes, output shapes, files written.

mod common;

use std::process::{Command, Stdio};

use common::{code, galaxy, text};

const BROKEN: &str =
    "pack broken {\n  language \"0.1\"\n  flow {\n    step a = count(missing)\n  }\n}\n";

#[test]
fn version_and_help() {
    let out = galaxy(&["--version"]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).starts_with("galaxy "),
        "{}",
        text(&out.stdout)
    );
    let out = galaxy(&["help"]);
    assert_eq!(code(&out), 0);
    for command in ["check", "fmt", "plan", "init"] {
        assert!(text(&out.stdout).contains(command), "help lists {command}");
    }
    assert_eq!(code(&galaxy(&["no-such-command"])), 2);
}

#[test]
fn example_packs_and_stdlib_check_clean_and_are_formatted() {
    let out = galaxy(&["check", "packs", "stdlib", "--deny-warnings"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("0 errors, 0 warnings"),
        "{}",
        text(&out.stderr)
    );
    let out = galaxy(&["fmt", "--check", "packs", "stdlib"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn check_reports_errors_with_exit_1_and_json_shape() {
    let dir = common::scratch("cli");
    let file = dir.join("broken.gx");
    std::fs::write(&file, BROKEN).expect("write");
    let path = file.to_str().expect("utf-8 path");

    let out = galaxy(&["check", path]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("GX0201"),
        "{}",
        text(&out.stderr)
    );

    let out = galaxy(&["check", "--format", "json", path]);
    assert_eq!(code(&out), 1);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let diagnostics = json.as_array().expect("an array");
    let first = diagnostics
        .iter()
        .find(|d| d["code"] == "GX0201")
        .expect("unknown name reported");
    for key in [
        "file",
        "severity",
        "code",
        "message",
        "range",
        "byte_range",
        "labels",
        "help",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    assert_eq!(first["severity"], "error");
    assert_eq!(first["range"]["start"]["line"], 3);
    assert_eq!(first["file"], path);
    let [start, end] = [&first["byte_range"][0], &first["byte_range"][1]]
        .map(|v| v.as_u64().expect("offset") as usize);
    assert_eq!(&BROKEN[start..end], "missing");
}

#[test]
fn warnings_alone_pass_unless_denied() {
    let dir = common::scratch("cli");
    let file = dir.join("warn.gx");
    // An unused input is a warning.
    std::fs::write(
        &file,
        "pack warn {\n  language \"0.1\"\n  input {\n    unused: Int = 1\n  }\n  flow {\n    step a = count([1, 2])\n  }\n  outcome success when a > 0\n}\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let out = galaxy(&["check", path]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(code(&galaxy(&["check", "--deny-warnings", path])), 1);
}

#[test]
fn missing_paths_are_usage_errors() {
    let out = galaxy(&["check", "no/such/dir"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn garbage_input_gives_diagnostics_not_a_crash() {
    let dir = common::scratch("cli");
    let file = dir.join("garbage.gx");
    std::fs::write(&file, b"\xff\xfe pack {{{{ ]] \"unterminated\n ### step").expect("write");
    // Not UTF-8: an I/O-level error, exit 2.
    assert_eq!(code(&galaxy(&["check", file.to_str().expect("path")])), 2);
    std::fs::write(&file, "pack {{{{ ]] \"unterminated\n ### step = = =").expect("write");
    let out = galaxy(&["check", file.to_str().expect("path")]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("GX0"), "{}", text(&out.stderr));
}

#[test]
fn fmt_check_lists_rewrites_and_reads_stdin() {
    let dir = common::scratch("cli");
    let file = dir.join("messy.gx");
    std::fs::write(&file, "pack  messy{\nlanguage \"0.1\"\n flow { step a = count([1,2]) }\n  outcome success when a>0 }\n")
        .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let out = galaxy(&["fmt", "--check", path]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stdout).contains("messy.gx"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(code(&galaxy(&["fmt", path])), 0);
    let formatted = std::fs::read_to_string(&file).expect("read");
    assert!(
        formatted.starts_with("pack messy {\n  language \"0.1\"\n"),
        "{formatted}"
    );
    assert_eq!(code(&galaxy(&["fmt", "--check", path])), 0);

    let mut child = Command::new(env!("CARGO_BIN_EXE_galaxy"))
        .args(["fmt", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pack p{flow{step a=1}}")
        .expect("write stdin");
    let out = child.wait_with_output().expect("output");
    assert_eq!(code(&out), 0);
    assert_eq!(
        text(&out.stdout),
        "pack p {\n  flow {\n    step a = 1\n  }\n}\n"
    );
}

#[test]
fn plan_prints_json_dot_and_mermaid() {
    let pack = "packs/inbox_triage/inbox_triage.gx";
    let out = galaxy(&["plan", pack]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(json["version"], 1);
    assert!(json["nodes"].as_array().is_some_and(|n| !n.is_empty()));
    let out = galaxy(&["plan", pack, "--format", "dot"]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).starts_with("digraph"),
        "{}",
        text(&out.stdout)
    );
    let out = galaxy(&["plan", pack, "--format", "mermaid"]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).contains("flowchart"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn plan_of_a_broken_pack_exits_1_with_diagnostics() {
    let dir = common::scratch("cli");
    let file = dir.join("broken.gx");
    std::fs::write(&file, BROKEN).expect("write");
    let out = galaxy(&["plan", file.to_str().expect("path")]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("GX0201"));
    assert!(out.stdout.is_empty());
}

#[test]
fn init_creates_a_project_that_checks() {
    let dir = common::scratch("cli");
    let out = galaxy(&["init", dir.to_str().expect("path")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(dir.join("packs/hello/hello.gx").exists());
    let out = galaxy(&["check", "--deny-warnings", dir.to_str().expect("path")]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    // A second init refuses to overwrite.
    assert_eq!(code(&galaxy(&["init", dir.to_str().expect("path")])), 2);
}
