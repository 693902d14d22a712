// @huggingface/hub snapshotDownload of one repo from hub_emulator into a cache dir.
// Usage: node hfjs.mjs <deps-dir> <hubUrl> <repo> <cacheDir> [revision]
// Prints the snapshot folder. Exit 1 (with the error) when the download fails.
import { createRequire } from "node:module";

const [depsDir, hubUrl, repo, cacheDir, revision] = process.argv.slice(2);
const hub = createRequire(depsDir.replace(/\/?$/, "/"))("@huggingface/hub");
try {
  const dir = await hub.snapshotDownload({ hubUrl, repo, cacheDir, ...(revision ? { revision } : {}) });
  console.log(dir);
} catch (e) {
  console.error(`snapshotDownload failed: ${e && e.message ? e.message : e}`);
  process.exit(1);
}
