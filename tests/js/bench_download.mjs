// Times @huggingface/hub downloadFile of one file from hub_emulator, bytes discarded.
// Usage: node bench_download.mjs <deps-dir> <hubUrl> <repo> <path>
import { createRequire } from "node:module";

const [depsDir, hubUrl, repo, path] = process.argv.slice(2);
const hub = createRequire(depsDir.replace(/\/?$/, "/"))("@huggingface/hub");
const start = process.hrtime.bigint();
const blob = await hub.downloadFile({ hubUrl, repo, path });
let bytes = 0;
for await (const chunk of blob.stream()) bytes += chunk.length;
const secs = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`@huggingface/hub downloadFile: ${bytes} bytes in ${secs.toFixed(3)} s = ${(bytes / secs / 1e9).toFixed(2)} GB/s`);
