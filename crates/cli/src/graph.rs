//! `galaxy graph`: the graph view of a pack for the web builder and scripts: export the
//! graph JSON, apply graph ops in place as minimal text edits, import a pack from a graph.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use dsl_check::graph::{self, Graph, GraphOp};

use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, read, world_for};

/// Arguments of `galaxy graph`.
#[derive(Args)]
pub struct GraphArgs {
    #[command(subcommand)]
    command: GraphCommand,
}

#[derive(Subcommand)]
enum GraphCommand {
    /// Print the graph JSON of a pack (nodes, edges, layout; see docs/graph.md)
    Export {
        /// The pack file
        pack: PathBuf,
    },
    /// Apply graph ops to a pack in place; prints the edits and id changes as JSON
    Apply {
        /// The pack file
        pack: PathBuf,
        /// A JSON array of ops, or `{ "ops": [...] }`; `-` reads standard input
        ops: PathBuf,
        /// Print the edits without writing the pack
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a formatted pack from a graph JSON
    Import {
        /// The graph JSON file; `-` reads standard input
        graph: PathBuf,
        /// Where to write the pack; `-` writes standard output
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Runs `galaxy graph ...`.
pub fn graph(args: GraphArgs) -> anyhow::Result<u8> {
    match args.command {
        GraphCommand::Export { pack } => export(&pack),
        GraphCommand::Apply { pack, ops, dry_run } => apply(&pack, &ops, dry_run),
        GraphCommand::Import { graph, output } => import(&graph, &output),
    }
}

fn read_input(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    read(path)
}

fn export(pack: &Path) -> anyhow::Result<u8> {
    let source = read(pack)?;
    let analysis = dsl_check::check(&source, &world_for(pack));
    let graph = graph::export(&analysis);
    println!("{}", serde_json::to_string_pretty(&graph)?);
    Ok(EXIT_OK)
}

/// The ops file: a bare array, or an object with an `ops` array (the LSP request's shape).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OpsFile {
    Bare(Vec<GraphOp>),
    Wrapped { ops: Vec<GraphOp> },
}

fn apply(pack: &Path, ops_path: &Path, dry_run: bool) -> anyhow::Result<u8> {
    let source = read(pack)?;
    let ops_text = read_input(ops_path)?;
    let ops = match serde_json::from_str::<OpsFile>(&ops_text) {
        Ok(OpsFile::Bare(ops) | OpsFile::Wrapped { ops }) => ops,
        Err(error) => {
            eprintln!(
                "error: {} is not a list of graph ops: {error}",
                ops_path.display()
            );
            return Ok(EXIT_USAGE);
        }
    };
    match graph::apply(&source, &ops, &world_for(pack)) {
        Ok(edit) => {
            if !dry_run && !edit.edits.is_empty() {
                let text = graph::apply_text_edits(&source, &edit.edits);
                std::fs::write(pack, text)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", pack.display()))?;
            }
            println!("{}", serde_json::to_string_pretty(&edit)?);
            Ok(EXIT_OK)
        }
        Err(error) => {
            eprintln!("error: refused, {} is unchanged: {error}", pack.display());
            Ok(EXIT_FAILED)
        }
    }
}

fn import(graph_path: &Path, output: &Path) -> anyhow::Result<u8> {
    let text = read_input(graph_path)?;
    let graph: Graph = match serde_json::from_str(&text) {
        Ok(graph) => graph,
        Err(error) => {
            eprintln!(
                "error: {} is not a graph JSON: {error}",
                graph_path.display()
            );
            return Ok(EXIT_USAGE);
        }
    };
    match graph::import(&graph) {
        Ok(pack) => {
            if output.as_os_str() == "-" {
                print!("{pack}");
            } else {
                std::fs::write(output, pack)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
            }
            Ok(EXIT_OK)
        }
        Err(error) => {
            eprintln!(
                "error: cannot write a pack from {}: {error}",
                graph_path.display()
            );
            Ok(EXIT_FAILED)
        }
    }
}
