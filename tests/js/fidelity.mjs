// Drives the real @huggingface/hub client against hub_emulator (tests/js_fidelity_test.cc).
// Usage: node fidelity.mjs <deps-dir> <config.json> <out.json>
// config: {hubUrl, cacheDir, token, repos:{model, sharded, manyFiles, versions, gated, private, hostile, gguf}}
// Writes {scenario: {ok, value?|error:{name,statusCode,message}}} to out.json (stdout carries
// the client's own debug lines).
import { createRequire } from "node:module";
import { readFile, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";

const [depsDir, configPath, outPath] = process.argv.slice(2);
const require = createRequire(depsDir.replace(/\/?$/, "/"));
const hub = require("@huggingface/hub");
const cfg = JSON.parse(await readFile(configPath, "utf8"));
const base = { hubUrl: cfg.hubUrl };
const results = {};

async function run(name, fn) {
  try {
    results[name] = { ok: true, value: await fn() };
  } catch (e) {
    results[name] = { ok: false, error: { name: e?.name, statusCode: e?.statusCode ?? null, message: String(e?.message ?? e) } };
  }
}

async function blobSha256(blob) {
  if (blob === null) return null;
  const buf = Buffer.from(await blob.arrayBuffer());
  return { sha256: createHash("sha256").update(buf).digest("hex"), size: buf.length };
}

const snap = (repo, extra = {}) => () =>
  hub.snapshotDownload({ ...base, repo, cacheDir: cfg.cacheDir, ...extra });

await run("snapshot_model", snap(cfg.repos.model));
await run("snapshot_sharded", snap(cfg.repos.sharded));
await run("snapshot_many_files", snap(cfg.repos.manyFiles));
await run("snapshot_versions_main", snap(cfg.repos.versions));
await run("snapshot_versions_v1", snap(cfg.repos.versions, { revision: "v1" }));
await run("snapshot_gguf", snap(cfg.repos.gguf));
await run("snapshot_gated_token", snap(cfg.repos.gated, { accessToken: cfg.token }));
await run("snapshot_private_token", snap(cfg.repos.private, { accessToken: cfg.token }));
await run("snapshot_hostile", snap(cfg.repos.hostile));

await run("list_many_files", async () => {
  const out = [];
  for await (const e of hub.listFiles({ ...base, repo: cfg.repos.manyFiles, recursive: true })) out.push({ type: e.type, path: e.path, oid: e.oid, size: e.size });
  return out;
});
await run("list_model_top", async () => {
  const out = [];
  for await (const e of hub.listFiles({ ...base, repo: cfg.repos.model })) out.push({ type: e.type, path: e.path, oid: e.oid, size: e.size, lfs: e.lfs ?? null });
  return out;
});

await run("download_config", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.model, path: "config.json" })));
await run("download_weights", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.model, path: "model.safetensors" })));
await run("download_v1_notes", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.versions, path: "notes.txt", revision: "v1" })));
await run("download_missing_file", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.model, path: "no-such-file.bin" })));
await run("download_missing_repo", async () => blobSha256(await hub.downloadFile({ ...base, repo: "nobody/nothing", path: "config.json" })));
await run("download_missing_revision", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.model, path: "config.json", revision: "no-such-branch" })));
await run("download_gated_no_token", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.gated, path: "config.json" })));
await run("download_gated_wrong_token", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.gated, path: "config.json", accessToken: "hf_not_approved" })));
await run("download_gated_weights_token", async () => blobSha256(await hub.downloadFile({ ...base, repo: cfg.repos.gated, path: "model.safetensors", accessToken: cfg.token })));
await run("snapshot_missing_repo", snap("nobody/nothing"));
await run("snapshot_private_no_token", snap(cfg.repos.private, { cacheDir: cfg.cacheDir + "-anon" }));
await run("snapshot_gated_no_token", snap(cfg.repos.gated, { cacheDir: cfg.cacheDir + "-anon" }));
await run("model_info_missing_revision", () => hub.modelInfo({ ...base, name: cfg.repos.model, revision: "no-such-branch" }));
await run("file_exists", async () => [
  await hub.fileExists({ ...base, repo: cfg.repos.model, path: "config.json" }),
  await hub.fileExists({ ...base, repo: cfg.repos.model, path: "model.safetensors" }),
  await hub.fileExists({ ...base, repo: cfg.repos.model, path: "nope.json" }),
]);

await writeFile(outPath, JSON.stringify(results, null, 1));
