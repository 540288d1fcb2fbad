//! The `tower-lsp-server` shell: decodes each request, calls the synchronous [`Engine`] under
//! `catch_unwind` (a panic answers that request with an error and the server goes on), and
//! publishes diagnostics shortly after each change (debounced).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types as lsp;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::engine::{Engine, EngineError, SEMANTIC_TOKEN_MODIFIERS, SEMANTIC_TOKEN_TYPES};

/// How long after the last change diagnostics are published: typing a word publishes once.
pub const DIAGNOSTICS_DEBOUNCE: Duration = Duration::from_millis(20);

/// The language server: a client handle and the engine.
#[derive(Debug)]
pub struct Backend {
    client: Client,
    engine: Arc<Mutex<Engine>>,
}

/// Runs `f` on the engine; a panic becomes an internal-error answer to this one request.
fn with_engine<T>(
    engine: &Mutex<Engine>,
    request: &str,
    f: impl FnOnce(&mut Engine) -> T,
) -> Result<T> {
    let mut guard = engine
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    catch_unwind(AssertUnwindSafe(|| f(&mut guard))).map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        Error {
            code: ErrorCode::InternalError,
            message: format!("internal error in {request}: {message}").into(),
            data: None,
        }
    })
}

fn invalid(message: impl std::fmt::Display) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: message.to_string().into(),
        data: None,
    }
}

/// LSP 3.17's `RequestFailed`: the request was valid but the server refused to carry it out.
const REQUEST_FAILED: i64 = -32803;

/// The JSON-RPC error of a refused engine request: a stale version is `ContentModified`
/// (the client should re-read the document and retry), a refused graph op `RequestFailed`.
fn refused(error: EngineError) -> Error {
    let (code, data) = match &error {
        EngineError::StaleVersion { requested, current } => (
            ErrorCode::ContentModified,
            Some(serde_json::json!({ "requested": requested, "current": current })),
        ),
        EngineError::Graph(_) => (ErrorCode::ServerError(REQUEST_FAILED), None),
        EngineError::UnknownDocument(_) | EngineError::InvalidRename(_) => {
            (ErrorCode::InvalidParams, None)
        }
    };
    Error {
        code,
        message: error.to_string().into(),
        data,
    }
}

/// Params of `galaxy/graph`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphParams {
    text_document: lsp::TextDocumentIdentifier,
}

/// Params of `galaxy/graphEdit`.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphEditParams {
    text_document: lsp::VersionedTextDocumentIdentifier,
    ops: Vec<dsl_check::graph::GraphOp>,
}

fn params<T: serde::de::DeserializeOwned>(request: &str, params: Value) -> Result<T> {
    serde_json::from_value(params).map_err(|e| invalid(format!("{request}: invalid params: {e}")))
}

impl Backend {
    /// A backend for `client`, with an engine that keeps the stdlib under the user's cache
    /// directory (so "go to definition" into `std.mail` opens a real file).
    pub fn new(client: Client) -> Backend {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache"))
            });
        let engine = match cache {
            Some(dir) => Engine::with_stdlib_dir(
                &dir.join("galaxy")
                    .join(format!("stdlib-{}", env!("CARGO_PKG_VERSION"))),
            ),
            None => Engine::new(),
        };
        Backend {
            client,
            engine: Arc::new(Mutex::new(engine)),
        }
    }

    fn run<T>(&self, request: &str, f: impl FnOnce(&mut Engine) -> T) -> Result<T> {
        with_engine(&self.engine, request, f)
    }

    /// Publishes the diagnostics of `uri` after the debounce, unless a newer change came.
    fn schedule_diagnostics(&self, uri: lsp::Uri, version: i32) {
        let engine = self.engine.clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DIAGNOSTICS_DEBOUNCE).await;
            let diagnostics = with_engine(&engine, "diagnostics", |engine| {
                (engine.version(&uri) == Some(version)).then(|| engine.diagnostics(&uri))
            });
            if let Ok(Some(diagnostics)) = diagnostics {
                client
                    .publish_diagnostics(uri, diagnostics, Some(version))
                    .await;
            }
        });
    }

    /// `galaxy/graph`: `{ textDocument: { uri } }` → the graph JSON of the current version.
    pub async fn graph(&self, raw: Value) -> Result<Value> {
        let p: GraphParams = params("galaxy/graph", raw)?;
        let graph = self
            .run("galaxy/graph", |e| e.graph(&p.text_document.uri))?
            .map_err(refused)?;
        serde_json::to_value(graph).map_err(|e| Error {
            code: ErrorCode::InternalError,
            message: format!("galaxy/graph: {e}").into(),
            data: None,
        })
    }

    /// `galaxy/graphEdit`: `{ textDocument: { uri, version }, ops }` → `{ edit, changed }`,
    /// or an error (and no edit) for a stale version or refused ops.
    pub async fn graph_edit(&self, raw: Value) -> Result<Value> {
        let p: GraphEditParams = params("galaxy/graphEdit", raw)?;
        let doc = p.text_document;
        let answer = self
            .run("galaxy/graphEdit", |e| {
                e.graph_edit(&doc.uri, doc.version, &p.ops)
            })?
            .map_err(refused)?;
        serde_json::to_value(answer).map_err(|e| Error {
            code: ErrorCode::InternalError,
            message: format!("galaxy/graphEdit: {e}").into(),
            data: None,
        })
    }

    /// `galaxy/debugPanic`: panics inside the engine (a test hook for request isolation).
    pub async fn debug_panic(&self, _params: Value) -> Result<Value> {
        self.run("galaxy/debugPanic", |engine| engine.debug_panic())?;
        Ok(Value::Null)
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, _: lsp::InitializeParams) -> Result<lsp::InitializeResult> {
        Ok(lsp::InitializeResult {
            server_info: Some(lsp::ServerInfo {
                name: "galaxy".to_string(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
            }),
            capabilities: capabilities(),
            offset_encoding: None,
        })
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: lsp::DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let (uri, version) = (doc.uri.clone(), doc.version);
        let _ = self.run("didOpen", |engine| {
            engine.open(doc.uri, doc.version, doc.text)
        });
        self.schedule_diagnostics(uri, version);
    }

    async fn did_change(&self, params: lsp::DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        let changed = self.run("didChange", |engine| {
            engine.change(&uri, version, params.content_changes)
        });
        match changed {
            Ok(Ok(())) => self.schedule_diagnostics(uri, version),
            Ok(Err(error)) => {
                self.client
                    .log_message(lsp::MessageType::ERROR, error.to_string())
                    .await
            }
            Err(error) => {
                self.client
                    .log_message(lsp::MessageType::ERROR, error.message)
                    .await
            }
        }
    }

    async fn did_close(&self, params: lsp::DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        let _ = self.run("didClose", |engine| engine.close(&uri));
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn hover(&self, params: lsp::HoverParams) -> Result<Option<lsp::Hover>> {
        let p = params.text_document_position_params;
        self.run("hover", |e| e.hover(&p.text_document.uri, p.position))
    }

    async fn completion(
        &self,
        params: lsp::CompletionParams,
    ) -> Result<Option<lsp::CompletionResponse>> {
        let p = params.text_document_position;
        self.run("completion", |e| {
            e.completion(&p.text_document.uri, p.position)
        })
        .map(|items| items.map(lsp::CompletionResponse::Array))
    }

    async fn signature_help(
        &self,
        params: lsp::SignatureHelpParams,
    ) -> Result<Option<lsp::SignatureHelp>> {
        let p = params.text_document_position_params;
        self.run("signatureHelp", |e| {
            e.signature_help(&p.text_document.uri, p.position)
        })
    }

    async fn goto_definition(
        &self,
        params: lsp::GotoDefinitionParams,
    ) -> Result<Option<lsp::GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        self.run("definition", |e| {
            e.definition(&p.text_document.uri, p.position)
        })
        .map(|l| l.map(lsp::GotoDefinitionResponse::Scalar))
    }

    async fn references(&self, params: lsp::ReferenceParams) -> Result<Option<Vec<lsp::Location>>> {
        let p = params.text_document_position;
        self.run("references", |e| {
            e.references(
                &p.text_document.uri,
                p.position,
                params.context.include_declaration,
            )
        })
    }

    async fn prepare_rename(
        &self,
        params: lsp::TextDocumentPositionParams,
    ) -> Result<Option<lsp::PrepareRenameResponse>> {
        self.run("prepareRename", |e| {
            e.prepare_rename(&params.text_document.uri, params.position)
        })
    }

    async fn rename(&self, params: lsp::RenameParams) -> Result<Option<lsp::WorkspaceEdit>> {
        let p = params.text_document_position;
        self.run("rename", |e| {
            e.rename(&p.text_document.uri, p.position, &params.new_name)
        })?
        .map_err(invalid)
    }

    async fn document_symbol(
        &self,
        params: lsp::DocumentSymbolParams,
    ) -> Result<Option<lsp::DocumentSymbolResponse>> {
        self.run("documentSymbol", |e| {
            e.document_symbols(&params.text_document.uri)
        })
        .map(|s| s.map(lsp::DocumentSymbolResponse::Nested))
    }

    async fn folding_range(
        &self,
        params: lsp::FoldingRangeParams,
    ) -> Result<Option<Vec<lsp::FoldingRange>>> {
        self.run("foldingRange", |e| {
            e.folding_ranges(&params.text_document.uri)
        })
    }

    async fn formatting(
        &self,
        params: lsp::DocumentFormattingParams,
    ) -> Result<Option<Vec<lsp::TextEdit>>> {
        self.run("formatting", |e| e.formatting(&params.text_document.uri))
    }

    async fn semantic_tokens_full(
        &self,
        params: lsp::SemanticTokensParams,
    ) -> Result<Option<lsp::SemanticTokensResult>> {
        self.run("semanticTokens", |e| {
            e.semantic_tokens(&params.text_document.uri)
        })
        .map(|t| t.map(lsp::SemanticTokensResult::Tokens))
    }

    async fn inlay_hint(
        &self,
        params: lsp::InlayHintParams,
    ) -> Result<Option<Vec<lsp::InlayHint>>> {
        self.run("inlayHint", |e| {
            e.inlay_hints(&params.text_document.uri, params.range)
        })
    }

    async fn code_action(
        &self,
        params: lsp::CodeActionParams,
    ) -> Result<Option<lsp::CodeActionResponse>> {
        self.run("codeAction", |e| {
            e.code_actions(&params.text_document.uri, params.range)
        })
        .map(|actions| {
            actions.map(|a| {
                a.into_iter()
                    .map(lsp::CodeActionOrCommand::CodeAction)
                    .collect()
            })
        })
    }
}

/// What the server offers.
pub fn capabilities() -> lsp::ServerCapabilities {
    lsp::ServerCapabilities {
        text_document_sync: Some(lsp::TextDocumentSyncCapability::Kind(
            lsp::TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(lsp::HoverProviderCapability::Simple(true)),
        completion_provider: Some(lsp::CompletionOptions {
            trigger_characters: Some(vec![".".into(), "(".into(), ",".into(), ":".into()]),
            ..Default::default()
        }),
        signature_help_provider: Some(lsp::SignatureHelpOptions {
            trigger_characters: Some(vec!["(".into(), ",".into()]),
            retrigger_characters: None,
            work_done_progress_options: Default::default(),
        }),
        definition_provider: Some(lsp::OneOf::Left(true)),
        references_provider: Some(lsp::OneOf::Left(true)),
        rename_provider: Some(lsp::OneOf::Right(lsp::RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_symbol_provider: Some(lsp::OneOf::Left(true)),
        folding_range_provider: Some(lsp::FoldingRangeProviderCapability::Simple(true)),
        document_formatting_provider: Some(lsp::OneOf::Left(true)),
        semantic_tokens_provider: Some(
            lsp::SemanticTokensServerCapabilities::SemanticTokensOptions(
                lsp::SemanticTokensOptions {
                    legend: lsp::SemanticTokensLegend {
                        token_types: SEMANTIC_TOKEN_TYPES.to_vec(),
                        token_modifiers: SEMANTIC_TOKEN_MODIFIERS.to_vec(),
                    },
                    full: Some(lsp::SemanticTokensFullOptions::Bool(true)),
                    range: None,
                    work_done_progress_options: Default::default(),
                },
            ),
        ),
        inlay_hint_provider: Some(lsp::OneOf::Left(true)),
        code_action_provider: Some(lsp::CodeActionProviderCapability::Options(
            lsp::CodeActionOptions {
                code_action_kinds: Some(vec![lsp::CodeActionKind::QUICKFIX]),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// Serves LSP over stdin/stdout until the client exits.
pub fn run_stdio() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (service, socket) = LspService::build(Backend::new)
            .custom_method("galaxy/graph", Backend::graph)
            .custom_method("galaxy/graphEdit", Backend::graph_edit)
            .custom_method("galaxy/debugPanic", Backend::debug_panic)
            .finish();
        Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    Ok(())
}
