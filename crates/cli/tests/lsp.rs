//! End-to-end tests of `galaxy lsp`: start the real binary, speak JSON-RPC with
//! `Content-Length` framing over its stdio as an editor would, and snapshot the answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

struct Client {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: i64,
    /// Notifications received while waiting for responses.
    notifications: Vec<Value>,
    cache: PathBuf,
}

impl Client {
    fn start(name: &str) -> Client {
        let cache =
            std::env::temp_dir().join(format!("galaxy-lsp-e2e-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let mut child = Command::new(env!("CARGO_BIN_EXE_galaxy"))
            .arg("lsp")
            .env("XDG_CACHE_HOME", &cache)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start galaxy lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Client {
            child,
            stdin,
            stdout,
            next_id: 1,
            notifications: Vec::new(),
            cache,
        }
    }

    fn send(&mut self, message: &Value) {
        let body = serde_json::to_string(message).expect("json");
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    fn receive(&mut self) -> Value {
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            let read = self.stdout.read_line(&mut line).expect("read header");
            assert!(read > 0, "the server closed its output");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(value) = line.strip_prefix("Content-Length: ") {
                length = value.parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        self.stdout.read_exact(&mut body).expect("read body");
        serde_json::from_slice(&body).expect("json body")
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    /// Sends a request and returns its response (`result` or `error`), keeping notifications.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let message = self.receive();
            if message.get("id") == Some(&json!(id)) && message.get("method").is_none() {
                return message;
            }
            if message.get("id").is_some() && message.get("method").is_some() {
                // A request from the server (none expected); answer it with null.
                let reply = json!({ "jsonrpc": "2.0", "id": message["id"], "result": null });
                self.send(&reply);
                continue;
            }
            self.notifications.push(message);
        }
    }

    /// Waits for the diagnostics of `version` of `uri`.
    fn diagnostics(&mut self, uri: &str, version: i64) -> Value {
        loop {
            if let Some(i) = self.notifications.iter().position(|n| {
                n["method"] == "textDocument/publishDiagnostics"
                    && n["params"]["uri"] == uri
                    && n["params"]["version"] == version
            }) {
                return self.notifications.remove(i)["params"]["diagnostics"].clone();
            }
            let message = self.receive();
            self.notifications.push(message);
        }
    }

    /// Replaces the cache directory (a temporary path) in `value`.
    fn redact(&self, value: &Value) -> Value {
        let text = serde_json::to_string(value).expect("json");
        let cache = self.cache.display().to_string();
        serde_json::from_str(&text.replace(&cache, "[cache]")).expect("json")
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.cache);
    }
}

const URI: &str = "file:///project/packs/demo/demo.gx";

const PACK: &str = r#"pack demo {
  language "0.1"
  use std.mail

  flow {
    /// Unread mail.
    step inbox = mail.search(query: "is:unread")
    step count_them = count(inbx.messages)
  }

  outcome success when count_them > 0
}
"#;

fn position(line: u32, character: u32) -> Value {
    json!({ "line": line, "character": character })
}

fn at(line: u32, character: u32) -> Value {
    json!({ "textDocument": { "uri": URI }, "position": position(line, character) })
}

#[test]
fn a_session_over_stdio() {
    let mut client = Client::start("session");
    let init = client.request(
        "initialize",
        json!({ "processId": null, "rootUri": null, "capabilities": {} }),
    );
    insta::assert_json_snapshot!("initialize", init);
    client.notify("initialized", json!({}));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": URI, "languageId": "gx", "version": 1, "text": PACK } }),
    );
    let diagnostics = client.diagnostics(URI, 1);
    insta::assert_json_snapshot!("diagnostics_on_open", diagnostics);

    let actions = client.request(
        "textDocument/codeAction",
        json!({
            "textDocument": { "uri": URI },
            "range": { "start": position(7, 28), "end": position(7, 28) },
            "context": { "diagnostics": diagnostics }
        }),
    );
    insta::assert_json_snapshot!("code_action", actions);

    // Fix the misspelling with an incremental edit: `inbx` -> `inbox`.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": URI, "version": 2 },
            "contentChanges": [{ "range": { "start": position(7, 31), "end": position(7, 31) }, "text": "o" }]
        }),
    );
    let diagnostics = client.diagnostics(URI, 2);
    assert_eq!(diagnostics, json!([]), "the fixed pack checks clean");

    let hover = client.request("textDocument/hover", at(6, 24));
    insta::assert_json_snapshot!("hover", hover);
    let completion = client.request("textDocument/completion", at(7, 37));
    insta::assert_json_snapshot!("completion_after_dot", completion);
    let definition = client.request("textDocument/definition", at(6, 24));
    let definition = client.redact(&definition);
    insta::assert_json_snapshot!("definition_into_stdlib", definition);
    let references = client.request(
        "textDocument/references",
        json!({ "textDocument": { "uri": URI }, "position": position(6, 10), "context": { "includeDeclaration": true } }),
    );
    insta::assert_json_snapshot!("references", references);
    let rename = client.request(
        "textDocument/rename",
        json!({ "textDocument": { "uri": URI }, "position": position(6, 10), "newName": "mailbox" }),
    );
    insta::assert_json_snapshot!("rename", rename);
    let signature = client.request("textDocument/signatureHelp", at(6, 30));
    insta::assert_json_snapshot!("signature_help", signature);
    let symbols = client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": URI } }),
    );
    insta::assert_json_snapshot!("document_symbols", symbols);
    let hints = client.request(
        "textDocument/inlayHint",
        json!({ "textDocument": { "uri": URI }, "range": { "start": position(0, 0), "end": position(20, 0) } }),
    );
    insta::assert_json_snapshot!("inlay_hints", hints);
    let tokens = client.request(
        "textDocument/semanticTokens/full",
        json!({ "textDocument": { "uri": URI } }),
    );
    assert!(
        tokens["result"]["data"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{tokens}"
    );
    let folding = client.request(
        "textDocument/foldingRange",
        json!({ "textDocument": { "uri": URI } }),
    );
    insta::assert_json_snapshot!("folding", folding);

    // A messy edit, then formatting gives `galaxy fmt`'s output as one edit.
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": URI, "version": 3 },
            "contentChanges": [{ "text": PACK.replace("inbx", "inbox").replace("step inbox = ", "step inbox=") }]
        }),
    );
    let formatting = client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": URI }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert_eq!(
        formatting["result"][0]["newText"],
        json!(dsl_syntax::format::format(&PACK.replace("inbx", "inbox")).expect("formats")),
    );

    // A panicking handler answers with an error; the next request still works.
    let panicked = client.request("galaxy/debugPanic", json!({}));
    insta::assert_json_snapshot!("panic_answer", panicked);
    let hover_after = client.request("textDocument/hover", at(6, 24));
    assert_eq!(
        hover_after["result"]["contents"],
        hover["result"]["contents"]
    );

    let shutdown = client.request("shutdown", json!(null));
    assert_eq!(shutdown["result"], json!(null));
    client.notify("exit", json!(null));
    let status = client.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

const GRAPH_URI: &str = "file:///project/packs/placed/placed.gx";

const GRAPH_PACK: &str = r#"pack placed {
  language "0.1"

  flow {
    /// The seed (é😀).
    step a = 1
    step b = a + 1
    step c = "é😀 {b}"
  }

  outcome success when b > 0

  layout {
    a: (0, 0)
    b: (120, 0)
    c: (240, 80)
  }
}
"#;

/// Applies a `galaxy/graphEdit` answer the way an editor does: its edits (against the
/// version the request named) sent back as one `didChange`, last edit first so that each
/// range is still valid when it is applied.
fn apply_graph_edit(client: &mut Client, answer: &Value, new_version: i64) {
    let documents = answer["result"]["edit"]["documentChanges"]
        .as_array()
        .unwrap_or_else(|| panic!("no documentChanges: {answer}"));
    assert_eq!(documents.len(), 1, "exactly one TextDocumentEdit");
    assert_eq!(documents[0]["textDocument"]["uri"], GRAPH_URI);
    let mut edits = documents[0]["edits"].as_array().expect("edits").clone();
    edits.reverse();
    let changes: Vec<Value> = edits
        .iter()
        .map(|e| json!({ "range": e["range"], "text": e["newText"] }))
        .collect();
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": GRAPH_URI, "version": new_version },
            "contentChanges": changes
        }),
    );
}

fn node<'a>(graph: &'a Value, id: &str) -> Option<&'a Value> {
    graph["result"]["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["id"] == id)
}

#[test]
fn graph_requests_over_stdio() {
    let mut client = Client::start("graph");
    client.request(
        "initialize",
        json!({ "processId": null, "rootUri": null, "capabilities": {} }),
    );
    client.notify("initialized", json!({}));
    client.notify(
        "textDocument/didOpen",
        json!({ "textDocument": { "uri": GRAPH_URI, "languageId": "gx", "version": 1, "text": GRAPH_PACK } }),
    );
    let doc = json!({ "textDocument": { "uri": GRAPH_URI } });
    let graph = client.request("galaxy/graph", doc.clone());
    insta::assert_json_snapshot!("graph", graph);

    // A drag on the canvas: one layout line changes.
    let moved = client.request(
        "galaxy/graphEdit",
        json!({
            "textDocument": { "uri": GRAPH_URI, "version": 1 },
            "ops": [{ "op": "move", "id": "c", "x": 300, "y": 90 }]
        }),
    );
    insta::assert_json_snapshot!("graph_edit_move", moved);
    apply_graph_edit(&mut client, &moved, 2);

    // A rename: every reference in the same edit; the client applies it as version 3.
    let renamed = client.request(
        "galaxy/graphEdit",
        json!({
            "textDocument": { "uri": GRAPH_URI, "version": 2 },
            "ops": [{ "op": "rename", "id": "b", "new_id": "doubled" }]
        }),
    );
    insta::assert_json_snapshot!("graph_edit_rename", renamed);
    apply_graph_edit(&mut client, &renamed, 3);
    assert_eq!(client.diagnostics(GRAPH_URI, 3), json!([]), "still clean");

    let after = client.request("galaxy/graph", doc);
    assert!(node(&after, "b").is_none(), "{after}");
    assert_eq!(
        node(&after, "doubled").map(|n| n["action"].clone()),
        Some(json!("a + 1"))
    );
    assert_eq!(
        node(&after, "c").map(|n| n["action"].clone()),
        Some(json!("\"é😀 {doubled}\""))
    );
    assert_eq!(
        after["result"]["layout"],
        json!({ "a": { "x": 0.0, "y": 0.0 }, "doubled": { "x": 120.0, "y": 0.0 }, "c": { "x": 300.0, "y": 90.0 } })
    );
    let edges: Vec<(Value, Value)> = after["result"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect();
    assert!(edges.contains(&(json!("doubled"), json!("c"))), "{edges:?}");

    // An edit against version 2 (the document is at 3) is refused, and changes nothing.
    let stale = client.request(
        "galaxy/graphEdit",
        json!({
            "textDocument": { "uri": GRAPH_URI, "version": 2 },
            "ops": [{ "op": "move", "id": "a", "x": 5, "y": 5 }]
        }),
    );
    insta::assert_json_snapshot!("graph_edit_stale", stale);
    assert!(stale.get("result").is_none());
    // Refused ops answer an error too.
    let unknown = client.request(
        "galaxy/graphEdit",
        json!({
            "textDocument": { "uri": GRAPH_URI, "version": 3 },
            "ops": [{ "op": "delete", "id": "a" }]
        }),
    );
    insta::assert_json_snapshot!("graph_edit_refused", unknown);
    let malformed = client.request(
        "galaxy/graphEdit",
        json!({ "textDocument": { "uri": GRAPH_URI, "version": 3 }, "ops": [{ "op": "fly" }] }),
    );
    assert_eq!(malformed["error"]["code"], json!(-32602), "{malformed}");
    let unchanged = client.request(
        "galaxy/graph",
        json!({ "textDocument": { "uri": GRAPH_URI } }),
    );
    assert_eq!(unchanged["result"], after["result"]);

    let shutdown = client.request("shutdown", json!(null));
    assert_eq!(shutdown["result"], json!(null));
    client.notify("exit", json!(null));
    let status = client.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
