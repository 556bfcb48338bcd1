// The browser auditor's page code, shared by the node dashboard's verify action and the
// standalone proof page. It fetches (the node, the chain's CometBFT RPC) and renders; every
// check runs in the wasm module (`relayer-auditor-web`), which is passed in as `auditor`, so
// the browser and `relayer verify` share one library. The chain endpoint and the contract are
// always the visitor's, never taken from the node being audited.
"use strict";

const SHOWN_MIXNODES = 200;
/** The largest answer read (a node's copy of 20,000 mixnodes is about 1 MB). */
const MAX_ANSWER_BYTES = 32 << 20;
/** Epochs of a mixnode's history audited. */
export const HISTORY_EPOCHS = 12;

/** The `ok` of a wasm answer, or throws its `error`. */
export function ok(answer) {
  const value = JSON.parse(answer);
  if ("error" in value) throw new Error(value.error);
  return value.ok;
}

async function get(url, what) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (err) {
    throw new Error(`${what}: cannot fetch ${url} (${err.message})`);
  }
  const length = Number(response.headers.get("content-length"));
  if (length > MAX_ANSWER_BYTES) throw new Error(`${what}: ${length} bytes from ${url}, more than the ${MAX_ANSWER_BYTES} read`);
  const body = await response.text();
  if (body.length > MAX_ANSWER_BYTES) throw new Error(`${what}: more than ${MAX_ANSWER_BYTES} bytes from ${url}`);
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} from ${url}: ${body.slice(0, 300)}`);
  return body;
}

/** What the chain says: its id (cached per RPC), the contract's record and signer set. */
export class Chain {
  constructor(auditor, rpc, contract) {
    this.auditor = auditor;
    this.rpc = rpc.trim().replace(/\/+$/, "");
    this.contract = contract.trim();
    this.chainId = null;
  }

  async id() {
    if (this.chainId === null) {
      const status = await get(this.auditor.status_url(this.rpc), "the chain's status");
      this.chainId = ok(this.auditor.chain_id(status));
    }
    return this.chainId;
  }

  /** The answer of the contract's record of `epoch`. */
  record(epoch) {
    return get(this.auditor.epoch_record_url(this.rpc, this.contract, BigInt(epoch)), "the contract's record");
  }

  /** The answer of the contract's signer set `version`. */
  signerSet(version) {
    return get(this.auditor.signer_set_url(this.rpc, this.contract, version), "the contract's signer set");
  }

  /** The last `count` stored epochs in which the contract holds a record of `mixId`. */
  async mixnodeEpochs(mixId, count) {
    const latest = await get(this.auditor.latest_epoch_url(this.rpc, this.contract), "the contract's latest epoch");
    const url = ok(this.auditor.mixnode_epochs_url(this.rpc, this.contract, mixId, count, latest));
    if (url === null) return [];
    return ok(this.auditor.mixnode_epochs(await get(url, "the contract's mixnode history")));
  }

  /** The record's answer and the answer of the signer set of its version (as `relayer verify`). */
  async epoch(epoch) {
    const record = await this.record(epoch);
    const version = ok(this.auditor.record_signer_set_version(BigInt(epoch), record));
    return { record, set: await this.signerSet(version) };
  }
}

/** Audits `node`'s copy of `epoch` against `chain`: the report (see `relayer_auditor::Report`). */
export async function auditEpoch(auditor, chain, node, epoch) {
  const base = node.replace(/\/+$/, "");
  const chainId = await chain.id();
  const { record, set } = await chain.epoch(epoch);
  const status = await get(`${base}/v1/status`, "the node's status");
  const copy = await get(`${base}/v1/epochs/${epoch}/rewards`, "the node's copy");
  return ok(auditor.audit_copy(chainId, chain.contract, BigInt(epoch), status, record, set, copy));
}

/** Checks a proof bundle's text against a pinned signer-set hash, or against `chain`. */
export async function verifyBundle(auditor, text, { pin, chain }) {
  const summary = ok(auditor.bundle_summary(text));
  if (pin) return ok(auditor.verify_bundle_pinned(text, pin));
  // The signer set of the bundle's version and the record, as `relayer verify-proof` reads them.
  const chainId = await chain.id();
  const set = await chain.signerSet(summary.signer_set_version);
  const record = await chain.record(summary.epoch);
  return ok(auditor.verify_bundle_on_chain(text, chainId, chain.contract, record, set));
}

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const child of children || []) node.append(child);
  return node;
}

function row(cells, attrs) {
  return el("tr", attrs, cells.map(cell => el("td", typeof cell === "object" && cell.mono ? { class: "mono" } : {}, [String(cell.mono ?? cell)])));
}

function headline(report) {
  const outcome = report.outcome;
  if (outcome.status === "verified") return `Epoch ${report.epoch}: ✔ ${outcome.summary}`;
  return `Epoch ${report.epoch}: ✘ check ${outcome.check} failed: ${outcome.error}`;
}

/** Whether the value shown is not the contract's (when its record was read). */
function differs(line) {
  return line.contract_uptime_bp !== null && line.shown_uptime_bp !== line.contract_uptime_bp;
}

/** A report as a DOM element, with its outcome and failed check as data attributes. */
export function renderReport(report, { mixId } = {}) {
  const outcome = report.outcome;
  const box = el("div", {
    class: "audit " + outcome.status,
    "data-epoch": report.epoch,
    "data-outcome": outcome.status,
    "data-check": outcome.status === "failed" ? outcome.check : "",
    "data-verdict": outcome.status === "verified" ? outcome.verdict.verdict : "",
  }, [el("h3", {}, [headline(report)])]);
  box.append(el("table", { class: "facts" }, [
    row(["chain, contract", { mono: `${report.chain_id} / ${report.contract}` }]),
    row(["signer set", `version ${report.signer_set_version}, threshold ${report.threshold}`]),
    row(["data hash shown", { mono: report.data_hash }]),
    row(["contract's data hash", { mono: report.contract_data_hash ?? "– (not read: pinned signer set)" }]),
    row(["signing digest checked", { mono: report.digest ?? "– (the data hash is not 32 bytes)" }]),
  ]));
  const valid = report.signatures.filter(s => s.valid).length;
  box.append(el("div", { class: "muted" }, [`${valid} of ${report.signatures.length} signatures valid over the digest (threshold ${report.threshold}): `]));
  box.append(el("div", { class: "signatures" }, report.signatures.map(s =>
    el("span", { class: "sig " + (s.valid ? "valid" : "invalid"), "data-signer": s.index }, [`#${s.index} ${s.valid ? "✔" : "✘"}`]))));
  // The lines that differ from the contract's record first, then in mix id order.
  const chosen = mixId === undefined ? report.mixnodes : report.mixnodes.filter(line => line.mix_id === mixId);
  const lines = chosen.filter(differs).concat(chosen.filter(line => !differs(line)));
  const body = lines.slice(0, SHOWN_MIXNODES).map(line => row([
    line.mix_id,
    line.shown_uptime_bp === null ? "–" : (line.shown_uptime_bp / 100).toFixed(2) + " %",
    line.contract_uptime_bp === null ? "–" : (line.contract_uptime_bp / 100).toFixed(2) + " %",
    line.verified ? "✔ verified" : differs(line) ? "✘ differs from the contract's record" : "✘ not verified",
  ], { "data-mix-id": line.mix_id, "data-verified": line.verified, class: line.verified ? "ok" : "bad" }));
  box.append(el("table", { class: "mixnodes" }, [
    el("thead", {}, [el("tr", {}, ["mixnode", "shown", "contract", "covered by t valid signatures"].map(h => el("th", {}, [h])))]),
    el("tbody", {}, body),
  ]));
  if (lines.length > SHOWN_MIXNODES) box.append(el("div", { class: "muted" }, [`… and ${lines.length - SHOWN_MIXNODES} more mixnodes (enter a mixnode id to see one)`]));
  return box;
}

/** An audit that could not run (unreachable chain, epoch not on chain, malformed answer). */
export function renderError(what, err) {
  return el("div", { class: "audit error", "data-outcome": "error", "data-check": "" }, [el("h3", {}, [`${what}: could not complete the audit: ${err.message}`])]);
}

/** One mixnode's uptime in the last HISTORY_EPOCHS stored epochs that the contract holds a
 * record of it in (the list comes from the chain, so an epoch the node leaves out shows as
 * failed), each epoch audited: rows of epoch, uptime, verified. */
export async function renderHistory(auditor, chain, node, mixId) {
  const rows = [];
  const epochs = (await chain.mixnodeEpochs(mixId, HISTORY_EPOCHS)).slice().reverse();
  for (const epoch of epochs) {
    try {
      const report = await auditEpoch(auditor, chain, node, epoch);
      const line = report.mixnodes.find(l => l.mix_id === mixId);
      const shown = line && line.shown_uptime_bp !== null ? (line.shown_uptime_bp / 100).toFixed(2) + " %" : "–";
      const verified = Boolean(line && line.verified);
      const why = report.outcome.status === "failed" ? report.outcome.check : (line ? "" : "not in this epoch");
      rows.push(row([epoch, shown, verified ? "✔ verified" : "✘ " + why], { "data-epoch": epoch, "data-verified": verified, class: verified ? "ok" : "bad" }));
    } catch (err) {
      rows.push(row([epoch, "–", "✘ " + err.message], { "data-epoch": epoch, "data-verified": false, class: "bad" }));
    }
  }
  return el("table", { class: "history", "data-mix-id": mixId }, [
    el("thead", {}, [el("tr", {}, ["epoch", `mixnode ${mixId} uptime`, "verified"].map(h => el("th", {}, [h])))]),
    el("tbody", {}, rows),
  ]);
}

/** The page's styles for reports (both pages add them). */
export const STYLE = `
  .audit { background: #fff; border: 1px solid #e3e6ec; border-left: 6px solid #adb5bd; border-radius: 8px; padding: .6rem 1rem; margin: .8rem 0; }
  .audit.verified { border-left-color: #2f9e44; } .audit.failed, .audit.error { border-left-color: #c92a2a; }
  .audit h3 { font-size: 1rem; margin: .2rem 0 .6rem; }
  .audit table { margin: .4rem 0; }
  .mono { font-family: ui-monospace, monospace; font-size: .8rem; word-break: break-all; }
  .sig { display: inline-block; margin: .1rem .3rem .1rem 0; padding: .05rem .35rem; border-radius: 4px; font-size: .8rem; }
  .sig.valid { background: #d3f9d8; } .sig.invalid { background: #ffe3e3; }
  tr.bad td { color: #c92a2a; }
`;
