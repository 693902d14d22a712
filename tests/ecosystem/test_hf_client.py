"""huggingface_hub (the Python client, from PyPI) judges the hub emulator, as js_fidelity_test
does with the JS client: every call it makes against the emulator, in both redirect modes
(LFS files 302 to the CDN; and --resolve-cache, regular files a relative 307), must give the
fixture's bytes, ids and errors. Where the emulator and the client disagree, the emulator is
wrong unless shared/PROTOCOL.md says otherwise."""
import hashlib
import json
from pathlib import Path

import pytest
from huggingface_hub import (HfApi, get_hf_file_metadata, hf_hub_download, hf_hub_url,
                             snapshot_download)
from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, RepositoryNotFoundError,
                                    RevisionNotFoundError)
from hub_emulator import Emulator, make_fixtures

TOKEN = "hf_python_fidelity_token"
MODEL, SHARDED, MANY = "mlx-community/Tiny-Model-4bit", "mlx-community/Tiny-Model-4bit-sharded", "fixtures/many-files"
VERSIONS, GATED, PRIVATE = "fixtures/versions", "fixtures/gated-model", "fixtures/private-model"


class Fixture:
    """What the emulator serves: repo.json of each repo (tools/EMULATOR.md)."""

    def __init__(self, repos: Path):
        self.repos = repos

    def repo(self, repo):
        return json.loads((self.repos / repo / "repo.json").read_text())

    def commit(self, repo, ref="main"):
        return self.repo(repo)["refs"][ref]

    def files(self, repo, ref="main"):
        j = self.repo(repo)
        return {f["path"]: f for f in j["commits"][j["refs"][ref]]["files"]}

    def content(self, repo, path, ref="main"):
        return (self.repos / repo / "objects" / self.files(repo, ref)[path]["object"]).read_bytes()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    work = tmp_path_factory.mktemp("fidelity")
    repos = make_fixtures(work / "repos", "model", "sharded", "many-files", "versions", "gated",
                          "private", weights_bytes="256KiB")
    emu = Emulator(repos, work, "--token", TOKEN, "--page-size", "50")
    yield emu, Fixture(repos)
    emu.stop()


@pytest.fixture(params=["redirect", "resolve-cache"])
def hub(request, served):
    # No reset between tests: it closes the connections the client keeps alive, unserved,
    # and huggingface_hub does not retry a request on one (no fault is set here anyway).
    emu, fx = served
    emu.configure(resolve_cache=request.param == "resolve-cache")
    emu.mode = request.param
    emu.since = max([e["seq"] for e in emu.log()], default=0)  # this test's requests follow
    yield emu, fx


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_model_info_matches_the_fixture(hub):
    emu, fx = hub
    api = HfApi(endpoint=emu.url)
    info = api.model_info(MODEL, files_metadata=True)
    assert info.sha == fx.commit(MODEL) and info.id == MODEL
    want = fx.files(MODEL)
    assert sorted(s.rfilename for s in info.siblings) == sorted(want)
    for s in info.siblings:
        f = want[s.rfilename]
        assert s.size == f["size"] and s.blob_id == f["git_oid"]
        assert (s.lfs.sha256 if s.lfs else None) == f.get("lfs_sha256")
    assert api.model_info(VERSIONS, revision="v1").sha == fx.commit(VERSIONS, "v1")


def test_list_repo_tree_pages_through_every_file(hub):
    emu, fx = hub
    api = HfApi(endpoint=emu.url)
    rows = [r for r in api.list_repo_tree(MANY, recursive=True) if r.__class__.__name__ == "RepoFile"]
    want = fx.files(MANY)
    assert len(want) > 50  # more than one page
    assert {r.path: (r.size, r.blob_id) for r in rows} == {
        p: (f["size"], f["git_oid"]) for p, f in want.items()}
    top = {r.path: r for r in api.list_repo_tree(MODEL)}
    assert top["model.safetensors"].lfs.sha256 == want_lfs(fx, MODEL, "model.safetensors")


def want_lfs(fx, repo, path):
    return fx.files(repo)[path]["lfs_sha256"]


def test_hf_hub_download_gives_the_bytes_under_the_hubs_ids(hub, tmp_path):
    emu, fx = hub
    for path, f in fx.files(MODEL).items():
        local = Path(hf_hub_download(MODEL, path, endpoint=emu.url, cache_dir=tmp_path))
        assert local.read_bytes() == fx.content(MODEL, path), path
        # The cache names the blob by the hub's id: the client read X-Linked-Etag / ETag.
        assert local.resolve().name == f.get("lfs_sha256", f["git_oid"]), path
        assert local.parent.name == fx.commit(MODEL)  # and the commit from X-Repo-Commit
    # The redirects the mode makes were taken: LFS bodies from the CDN, and in resolve-cache
    # mode the regular files through /api/resolve-cache/.
    paths = [(e["listener"], e["path"]) for e in emu.log(emu.since)]
    assert any(l == "cdn" and p.endswith("/model.safetensors") for l, p in paths)
    assert any(p.startswith("/api/resolve-cache/") for _, p in paths) == (emu.mode == "resolve-cache")
    meta = get_hf_file_metadata(hf_hub_url(MODEL, "model.safetensors", endpoint=emu.url))
    f = fx.files(MODEL)["model.safetensors"]
    assert meta.commit_hash == fx.commit(MODEL) and meta.etag == f["lfs_sha256"]
    assert meta.size == f["size"]


def test_snapshot_download_of_every_kind_of_repo(hub, tmp_path):
    emu, fx = hub
    for repo, ref, extra in [(MODEL, "main", {}), (SHARDED, "main", {}),
                             (VERSIONS, "main", {}), (VERSIONS, "v1", {"revision": "v1"}),
                             (GATED, "main", {"token": TOKEN}), (PRIVATE, "main", {"token": TOKEN})]:
        snap = Path(snapshot_download(repo, endpoint=emu.url, cache_dir=tmp_path, **extra))
        assert snap.name == fx.commit(repo, ref), (repo, ref)
        got = {str(p.relative_to(snap)): p.read_bytes() for p in snap.rglob("*") if p.is_file()}
        assert sorted(got) == sorted(fx.files(repo, ref)), (repo, ref)
        for path, data in got.items():
            assert sha256(data) == sha256(fx.content(repo, path, ref)), (repo, ref, path)
    refs = tmp_path / "models--fixtures--versions" / "refs"
    assert (refs / "v1").read_text() == fx.commit(VERSIONS, "v1")


def test_every_error_class_the_client_maps(hub, tmp_path):
    emu, _ = hub
    kw = {"endpoint": emu.url, "cache_dir": tmp_path}
    with pytest.raises(RepositoryNotFoundError) as e:
        hf_hub_download("nobody/nothing", "config.json", **kw)
    assert not isinstance(e.value, GatedRepoError)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(MODEL, "config.json", revision="no-such-branch", **kw)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(MODEL, "no-such-file.bin", **kw)
    with pytest.raises(GatedRepoError):
        hf_hub_download(GATED, "config.json", **kw)
    with pytest.raises(GatedRepoError):
        hf_hub_download(GATED, "config.json", token="hf_someone_else", **kw)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(PRIVATE, "config.json", **kw)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=emu.url).model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        HfApi(endpoint=emu.url).model_info(MODEL, revision="no-such-branch")
    # The gated repo's metadata is public (as on the Hub); its files are not.
    assert HfApi(endpoint=emu.url).model_info(GATED).gated is not None
    assert Path(hf_hub_download(GATED, "config.json", token=TOKEN, **kw)).exists()
