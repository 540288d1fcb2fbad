//! The `galaxy` binary: thin glue from the command line to the toolchain's crates.

/// mimalloc: the front end allocates many small tree nodes, and mimalloc makes parsing and
/// formatting 20–40% faster than the system allocator (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Opts a process that runs packs out of transparent huge pages. mimalloc asks for them on
/// its memory, and the kernel then zeroes 2 MiB at the first touch of each: a third of the
/// CPU a Sim Mode benchmark run spent went there, some of it in the middle of a wave, where
/// the wave's steps waited. Without, pages are 4 KiB, faulted as they are used (see
/// docs/benchmarks.md). The other commands keep them: the front end's figures were measured
/// with them, and their runs of the front-end bench without were no faster.
fn no_huge_pages() {
    // SAFETY: `PR_SET_THP_DISABLE` takes plain integers and sets a flag of this process.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

mod graph;
mod render;
mod run;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dsl_syntax::Diagnostic;

/// The Galaxy toolchain for the Pack language.
#[derive(Parser)]
#[command(name = "galaxy", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parse and check packs and modules: names, types, policy, flow
    Check {
        /// Files or directories (searched recursively for `*.gx`)
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// How to print diagnostics
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
        format: DiagnosticFormat,
        /// Exit 1 on warnings too
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Format packs in place (or check that they are formatted)
    Fmt {
        /// Files or directories; `-` formats standard input to standard output
        #[arg(default_value = ".")]
        paths: Vec<PathBuf>,
        /// Change nothing; exit 1 and list the files that would change
        #[arg(long)]
        check: bool,
    },
    /// Print the execution plan of a pack
    Plan {
        /// The pack file
        pack: PathBuf,
        /// Output format
        #[arg(long, value_enum, default_value_t = PlanFormat::Json)]
        format: PlanFormat,
    },
    /// Run a pack (`--sim` for Sim Mode: no keys, no network)
    Run(run::RunArgs),
    /// Run a pack's eval cases in Sim Mode with their mocks, inputs and approval decisions
    Test(run::TestArgs),
    /// Continue an interrupted, crashed, approved or over-budget run
    Resume(run::ResumeArgs),
    /// Approve (or reject) a step waiting for approval
    Approve(run::ApproveArgs),
    /// List runs, newest first
    Runs(run::RunsArgs),
    /// Show one run: status, steps, outputs, approvals
    Show(run::ShowArgs),
    /// Draw a run's trace (timeline, JSON or Chrome trace events)
    Trace(run::TraceArgs),
    /// Create a starter project with one pack that checks
    Init {
        /// Where to create it
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Serve the language server protocol on stdin/stdout (for editors)
    Lsp,
    /// Export a pack as a graph, apply graph ops to it, or import one from a graph
    Graph(graph::GraphArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum DiagnosticFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum PlanFormat {
    Json,
    Dot,
    Mermaid,
}

/// Exit codes shared by every command.
const EXIT_OK: u8 = 0;
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_OK
            });
        }
    };
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            deny_warnings,
        } => check(&paths, format, deny_warnings),
        Command::Fmt { paths, check } => fmt(&paths, check),
        Command::Plan { pack, format } => plan(&pack, format),
        Command::Init { dir } => init(&dir),
        Command::Run(args) => {
            no_huge_pages();
            run::run(args)
        }
        Command::Test(args) => {
            no_huge_pages();
            run::test(args)
        }
        Command::Resume(args) => {
            no_huge_pages();
            run::resume(args)
        }
        Command::Approve(args) => run::approve(args),
        Command::Runs(args) => run::runs(args),
        Command::Show(args) => run::show(args),
        Command::Trace(args) => run::trace(args),
        Command::Graph(args) => graph::graph(args),
        Command::Lsp => galaxy_lsp::run_stdio()
            .map(|()| EXIT_OK)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Whether to colour output written to stderr.
fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// The `.gx` files named by `paths`, directories searched recursively, in a stable order.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        if metadata.is_dir() {
            walk(path, &mut files)?;
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "gx") {
            files.push(path);
        }
    }
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// Project files imported with `use "./x.gx"`, read relative to the importing pack.
struct DiskWorld {
    dir: PathBuf,
}

impl dsl_check::World for DiskWorld {
    fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(path)).ok()
    }
}

fn world_for(path: &Path) -> DiskWorld {
    DiskWorld {
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
    }
}

fn check(paths: &[PathBuf], format: DiagnosticFormat, deny_warnings: bool) -> anyhow::Result<u8> {
    let files = collect_files(paths)?;
    let (mut errors, mut warnings) = (0usize, 0usize);
    let mut json = Vec::new();
    let color = color();
    let stderr = std::io::stderr();
    for file in &files {
        let source = read(file)?;
        let analysis = dsl_check::check(&source, &world_for(file));
        let diagnostics = &analysis.diagnostics;
        errors += diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += diagnostics.iter().filter(|d| !d.is_error()).count();
        let name = file.display().to_string();
        match format {
            DiagnosticFormat::Human => {
                render::human(&name, &source, diagnostics, color, &mut stderr.lock())
            }
            DiagnosticFormat::Json => json.extend(render::json(&name, &source, diagnostics)),
        }
    }
    match format {
        DiagnosticFormat::Human => {
            let summary = format!(
                "checked {} file{}: {} error{}, {} warning{}",
                files.len(),
                plural(files.len()),
                errors,
                plural(errors),
                warnings,
                plural(warnings)
            );
            eprintln!("{summary}");
        }
        DiagnosticFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&json)?);
        }
    }
    Ok(if errors > 0 || (deny_warnings && warnings > 0) {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn report_syntax_errors(name: &str, source: &str, errors: &[Diagnostic]) {
    render::human(name, source, errors, color(), &mut std::io::stderr().lock());
}

fn fmt(paths: &[PathBuf], check_only: bool) -> anyhow::Result<u8> {
    if paths.len() == 1 && paths.first().is_some_and(|p| p.as_os_str() == "-") {
        let mut source = String::new();
        std::io::stdin().read_to_string(&mut source)?;
        return match dsl_syntax::format::format(&source) {
            Ok(formatted) => {
                std::io::stdout().write_all(formatted.as_bytes())?;
                Ok(EXIT_OK)
            }
            Err(errors) => {
                report_syntax_errors("<stdin>", &source, &errors);
                Ok(EXIT_FAILED)
            }
        };
    }
    let files = collect_files(paths)?;
    let mut unformatted = Vec::new();
    let mut broken = 0;
    for file in &files {
        let source = read(file)?;
        match dsl_syntax::format::format(&source) {
            Ok(formatted) if formatted == source => {}
            Ok(formatted) => {
                if check_only {
                    unformatted.push(file.display().to_string());
                } else {
                    std::fs::write(file, formatted)
                        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
                }
            }
            Err(errors) => {
                broken += 1;
                report_syntax_errors(&file.display().to_string(), &source, &errors);
            }
        }
    }
    for name in &unformatted {
        println!("{name}");
    }
    if !unformatted.is_empty() {
        eprintln!(
            "{} file{} would be reformatted",
            unformatted.len(),
            plural(unformatted.len())
        );
    }
    Ok(if broken > 0 || !unformatted.is_empty() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn plan(pack: &Path, format: PlanFormat) -> anyhow::Result<u8> {
    let source = read(pack)?;
    let analysis = dsl_check::check(&source, &world_for(pack));
    let name = pack.display().to_string();
    if analysis.diagnostics.iter().any(Diagnostic::is_error) {
        render::human(
            &name,
            &source,
            &analysis.diagnostics,
            color(),
            &mut std::io::stderr().lock(),
        );
        return Ok(EXIT_FAILED);
    }
    let Some(plan) = analysis.into_plan() else {
        eprintln!("error: {name} is a module, not a pack: it has no plan");
        return Ok(EXIT_FAILED);
    };
    let text = match format {
        PlanFormat::Json => serde_json::to_string_pretty(&plan)?,
        PlanFormat::Dot => plan.to_dot(),
        PlanFormat::Mermaid => plan.to_mermaid(),
    };
    println!("{text}");
    Ok(EXIT_OK)
}

const STARTER_PACK: &str = include_str!("templates/hello.gx");

fn init(dir: &Path) -> anyhow::Result<u8> {
    let pack_dir = dir.join("packs").join("hello");
    let pack = pack_dir.join("hello.gx");
    if pack.exists() {
        eprintln!("error: {} already exists", pack.display());
        return Ok(EXIT_USAGE);
    }
    std::fs::create_dir_all(&pack_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", pack_dir.display()))?;
    std::fs::write(&pack, STARTER_PACK)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", pack.display()))?;
    let gitignore = dir.join(".gitignore");
    if !gitignore.exists() {
        std::fs::write(&gitignore, ".galaxy/\n")?;
    }
    println!("created {}", pack.display());
    println!("next: galaxy check {}", dir.display());
    Ok(EXIT_OK)
}
