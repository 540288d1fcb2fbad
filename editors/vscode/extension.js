// Starts `galaxy lsp` (stdio) for .gx files.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("galaxy").get("path", "galaxy");
  const server = { command, args: ["lsp"], transport: TransportKind.stdio };
  client = new LanguageClient(
    "galaxy",
    "Galaxy",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "gx" }, { scheme: "untitled", language: "gx" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
